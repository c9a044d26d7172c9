"""The paper's baselines, one module each; importing this package registers them."""

from baselines import ganomaly  # noqa: F401
