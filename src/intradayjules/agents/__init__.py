"""Agents: the Stable-Baselines3 DQN trainer and model export."""
