"""Training: the RL loop over rollouts, rewards, advantages and objectives, with checkpoints and resume."""
