"""User-facing errors: one line that names the problem and the fix.

Every error a user can cause by bad input (a flag, a config key, a file) is a `LadkitError`.
The CLI prints `error: <message>` and exits with status 2 instead of a traceback; Python callers
get an ordinary exception (a `ValueError` subclass, so `except ValueError` keeps working).
"""


class LadkitError(ValueError):
    """Bad input from the user. The message is one line: what is wrong, and how to fix it."""

    def __init__(self, message: str):
        # Collapse any newline a caller let slip in: the contract is a single line.
        super().__init__(" ".join(str(message).split()))


class UnknownNameError(LadkitError, KeyError):
    """A name looked up in a registry (objective, divergence, ...) that does not exist."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return self.args[0]
