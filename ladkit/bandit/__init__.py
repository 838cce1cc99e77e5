"""The bandit experiment: the paper's controlled check of LAD vs GRPO on a K-armed softmax policy (docs/design.md 7)."""
