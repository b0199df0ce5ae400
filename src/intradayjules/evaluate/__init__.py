"""Evaluation: backtests of a policy on held-out sessions and their performance statistics."""
