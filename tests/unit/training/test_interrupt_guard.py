"""InterruptGuard: SIGTERM / SIGINT become TrainingInterrupted at once, or at the end of a writing() block."""

import os
import signal

import pytest

from ladkit.training.interrupt import InterruptGuard, TrainingInterrupted


@pytest.fixture
def guard():
    guard = InterruptGuard().install()
    yield guard
    guard.restore()


@pytest.mark.parametrize(("number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_outside_a_write_stops_at_once(guard, number, code):
    with pytest.raises(TrainingInterrupted) as caught:
        os.kill(os.getpid(), number)
        signal.sigtimedwait([], 0)  # give the interpreter a chance to run the handler (it runs between bytecodes)
    assert caught.value.exit_code == code and str(caught.value) == signal.Signals(number).name
    assert isinstance(caught.value, KeyboardInterrupt)  # code that catches Ctrl-C still does


def test_a_signal_during_a_write_waits_for_the_write_to_finish(guard, tmp_path):
    path = tmp_path / "file.txt"
    with pytest.raises(TrainingInterrupted), guard.writing(), open(path, "w") as handle:
        handle.write("first half, ")
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # many bytecodes: the handler has run by now, and must not have raised
            pass
        handle.write("second half")
    assert path.read_text() == "first half, second half"


def test_a_second_signal_does_not_cut_the_clean_up_short(guard):
    with pytest.raises(TrainingInterrupted):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)
    cleaned = False
    with guard.writing():  # the clean-up (marking the run interrupted) after the first signal
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass
        cleaned = True
    assert cleaned  # and nothing was raised at the end of the block either


def test_restore_gives_the_previous_handlers_back():
    before = signal.getsignal(signal.SIGTERM)
    guard = InterruptGuard().install()
    assert signal.getsignal(signal.SIGTERM) == guard._handle
    guard.restore()
    assert signal.getsignal(signal.SIGTERM) == before
