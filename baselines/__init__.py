"""The paper's baselines, one module each; importing this package registers them."""

from baselines import adgan, dsebm, ganomaly, geotrans, knn, ocsvm  # noqa: F401
