"""The paper's baselines, one module each (registered through ``bench.methods``)."""
