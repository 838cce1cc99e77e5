"""A dense reward for the DDP test: the fraction of digits in the completion (differs between samples)."""


def digits(completion: str, example) -> float:
    return sum(ch.isdigit() for ch in completion) / max(len(completion), 1)
