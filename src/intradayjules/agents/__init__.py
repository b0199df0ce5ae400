"""Agents: the algorithm table (DQN, QR-DQN, PPO, A2C), training, risk-aware QR-DQN, model export."""
