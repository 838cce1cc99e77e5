"""SIGTERM and Ctrl-C during training: stop cleanly, never in the middle of writing a file.

While `InterruptGuard` is installed, SIGTERM and SIGINT raise `TrainingInterrupted` (a KeyboardInterrupt, so
code that catches Ctrl-C still does), except inside `guard.writing()` blocks (a metrics row, a checkpoint,
meta.json): there the signal is held and raised when the block ends, so the file is finished first. The
loop then marks the run "interrupted" (resumable from its last checkpoint, as after kill -9) and the CLI
exits non-zero with one line saying how to resume. Handlers can only be set in the main thread; elsewhere
(a notebook's worker thread) the guard does nothing and signals keep their usual behaviour.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by a signal; `signal_number` says which."""

    def __init__(self, signal_number: int):
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number  # the shell's convention for "ended by signal N" (130 Ctrl-C, 143 TERM)


class InterruptGuard:
    """Turns SIGTERM / SIGINT into TrainingInterrupted, held back while a file is being written."""

    def __init__(self) -> None:
        self.received: int | None = None  # the signal that arrived, once one has
        self.raised = False  # TrainingInterrupted is raised once; later signals do not cut the clean-up short
        self.depth = 0  # nesting of writing() blocks
        self.previous: dict[int, object] = {}

    def install(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self._handle) for number in SIGNALS}
        return self

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """A block that a signal does not cut short: the signal is raised when the block ends."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        self._raise_if_due()

    def _handle(self, signal_number: int, frame) -> None:
        if self.received is None:
            self.received = signal_number
        self._raise_if_due()

    def _raise_if_due(self) -> None:
        if self.depth == 0 and self.received is not None and not self.raised:
            self.raised = True
            raise TrainingInterrupted(self.received)
