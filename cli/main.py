"""The `ladkit` command: a Typer app whose commands are thin wrappers over the library.

Heavy imports (torch, plotly) happen inside command bodies, so `ladkit --help` answers instantly.
A `LadkitError` (bad input) becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from ladkit_cli import bandit, compare, train
from ladkit_cli import eval as eval_cmd

app = typer.Typer(
    name="ladkit",
    help="Train and compare LLM policies with LAD (Learning Advantage Distribution), GRPO and FlowRL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("bandit")(bandit.bandit)
app.command("train")(train.train)
app.command("compare")(compare.compare)
app.command("eval")(eval_cmd.eval_command)


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", help="Print the ladkit version and exit.", is_eager=True),
) -> None:
    """Train and compare LLM policies with LAD, GRPO and FlowRL."""
    if version:
        from ladkit import __version__

        typer.echo(f"ladkit {__version__}")
        raise typer.Exit()


def main() -> None:
    """Console-script entry point."""
    from ladkit.errors import LadkitError

    moved = train.moved_flag_error(sys.argv[2:]) if sys.argv[1:2] == ["train"] else None
    if moved is not None:
        print(f"error: {moved}", file=sys.stderr)
        sys.exit(2)
    try:
        app()
    except LadkitError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
