"""The terminal view of `ladkit train` renders progress and the newest rows."""

from rich.console import Console

from ladkit.training.live import HISTORY, TrainLiveView


def test_live_view_shows_the_latest_rows():
    console = Console(record=True, width=140, force_terminal=False)
    view = TrainLiveView(total_steps=20, title="lad on countdown", console=console)
    with view:
        for step in range(12):
            view(step, {"step": step, "reward/mean": 0.1 + step / 100, "policy/entropy": 0.5, "loss/value": 0.01})
    text = console.export_text()
    assert "lad on countdown" in text and "12/20" in text
    assert "0.210" in text  # step 11's reward
    assert len(view.rows) == HISTORY and view.rows[0]["step"] == 12 - HISTORY
