"""`forge`: the command groups, assembled; Forge's errors become one clear line and exit code 1."""

from __future__ import annotations

import sys

import typer

from forge.cli import run
from forge.cli import cost
from forge.cli import datasets
from forge.cli import eval as eval_cli
from forge.cli import demo, domains, jobs, keys, serve, storage, traces
from forge.cli import canary as canary_cli
from forge.cli import models as models_cli
from forge.cli.common import err
from forge.domain.errors import ForgeError

app = typer.Typer(help="Forge: distil a teacher model's traffic into a cheaper student.", no_args_is_help=True)
app.add_typer(traces.app, name="traces")
app.add_typer(keys.app, name="keys")
app.add_typer(domains.app, name="domain")
app.add_typer(jobs.app, name="jobs")
app.add_typer(storage.app, name="storage")
app.add_typer(models_cli.app, name="models")
app.add_typer(datasets.app, name="datasets")
app.add_typer(canary_cli.app, name="canary")
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("run")(run.run)
app.command("worker")(run.worker)
app.command("status")(run.status)
app.command("eval")(eval_cli.eval_)
app.command("cost")(cost.cost)


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

        # typer ≥ 0.29 raises its own fork of click's usage errors; both kinds know how to show themselves.
        if isinstance(exc, (click.ClickException, typer.TyperException)) and hasattr(exc, "show"):
            exc.show()
            sys.exit(exc.exit_code)
        raise
