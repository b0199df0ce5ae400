"""Risk: incremental metrics, the lambda-weighted composite and profiles, reward shaping, limits, callback."""
