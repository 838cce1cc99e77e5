"""The `ladkit` command-line interface (installed as `ladkit_cli`): thin Typer commands over the library."""
