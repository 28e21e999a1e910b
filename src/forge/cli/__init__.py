"""The `forge` command line: one Typer module per command group, assembled in main.py."""
