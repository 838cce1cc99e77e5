"""A bandit run with its records: run folder, optional live terminal view, HTML figure.

`ladkit bandit` and the notebook both call `run_and_record`; `run_bandit` (experiment.py) stays free of
files and terminals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ladkit.bandit.config import BanditConfig, label
from ladkit.bandit.experiment import BanditProgress, BanditResult, bandit_target, config_dict, run_bandit
from ladkit.bandit.shapes import make_advantages
from ladkit.runs import RunWriter, run_name, unique_path


def default_run_dir(config: BanditConfig, root: str | Path = "runs") -> Path:
    labels = [label(spec, config.lad.divergence) for spec in config.objectives]
    pi_old = "fixed" if config.refresh_every is None else f"refresh{config.refresh_every}"
    return unique_path(Path(root) / run_name("bandit", *labels, config.shape, pi_old, f"s{config.seed}"))


def run_and_record(
    config: BanditConfig,
    run_dir: str | Path | None = None,
    live: bool = False,
    callback: Callable[[BanditProgress], None] | None = None,
    callback_every: int = 50,
) -> tuple[BanditResult, Path]:
    """Run the bandit, writing config.yaml, meta.json, metrics.jsonl, summary.json and bandit.html."""
    make_advantages(config.shape, config.num_arms, config.table)  # bad tables fail before a folder exists
    path = Path(run_dir) if run_dir is not None else default_run_dir(config)
    writer = RunWriter(path, config_dict(config), command="bandit")
    try:
        if live:
            from ladkit.bandit.live import BanditLiveView

            _, target = bandit_target(config)
            labels = [label(spec, config.lad.divergence) for spec in config.objectives]
            with BanditLiveView(target, labels, config.steps) as view:
                both = view if callback is None else _chain(view, callback)
                result = run_bandit(config, both, callback_every, on_row=writer.log)
            view.console.print()
        else:
            result = run_bandit(config, callback, callback_every, on_row=writer.log)
        summary = {
            "target": result.target.tolist(),
            "advantages": result.advantages.tolist(),
            "mode_peaks": result.modes.peaks,
            "target_mode_mass": result.modes.target_mass.tolist(),
            "runs": {run.label: run.summary for run in result.runs},
        }
        writer.write_json("summary.json", summary)
        from ladkit.bandit.figure import write_bandit_html

        write_bandit_html(result, path / "bandit.html")
    except BaseException:
        writer.finish(status="failed")
        raise
    writer.finish(status="completed")
    return result, path


def _chain(*callbacks: Callable[[BanditProgress], None]) -> Callable[[BanditProgress], None]:
    def call(event: BanditProgress) -> None:
        for cb in callbacks:
            cb(event)

    return call
