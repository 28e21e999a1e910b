"""`forge`: the command groups, assembled; Forge's errors become one clear line and exit code 1."""

from __future__ import annotations

import sys

import typer

from forge.cli import demo, domains, jobs, keys, serve, storage, traces
from forge.cli.common import err
from forge.domain.errors import ForgeError

app = typer.Typer(help="Forge: distil a teacher model's traffic into a cheaper student.", no_args_is_help=True)
app.add_typer(traces.app, name="traces")
app.add_typer(keys.app, name="keys")
app.add_typer(domains.app, name="domain")
app.add_typer(jobs.app, name="jobs")
app.add_typer(storage.app, name="storage")
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)


def main(argv: list[str] | None = None) -> None:
    try:
        result = app(args=argv, standalone_mode=False)
        if isinstance(result, int) and result:
            sys.exit(result)
    except ForgeError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
