"""The methods DifferNet is compared with, one module each (registered through
``bench.methods``): the paper's six baselines (OCSVM and 1-NN on the shared features; GeoTrans,
GANomaly, DSEBM and ADGAN on the images, whose shared part is ``common``) and today's three that
replaced them (PatchCore, PaDiM and CS-Flow on the backbone's feature maps)."""
