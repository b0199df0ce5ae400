"""Features: indicator kernels, the batch pipeline, the training-session scaler and the shared,
content-addressed feature store (see docs/features.md)."""
