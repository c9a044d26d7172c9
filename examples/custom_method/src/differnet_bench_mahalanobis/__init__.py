"""A differnet-bench plugin: the Mahalanobis distance on DifferNet's multi-scale features."""
