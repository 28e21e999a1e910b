"""`forge`: the command groups, assembled; Forge's errors become one clear line and exit code 1."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from forge.cli import run
from forge.cli import cost
from forge.cli import datasets
from forge.cli import eval as eval_cli
from forge.cli import demo, domains, jobs, keys, serve, storage, traces
from forge.cli import canary as canary_cli
from forge.cli import drift as drift_cli
from forge.cli import models as models_cli
from forge.cli import export as export_cli
from forge.cli import lora
from forge.cli import economics as economics_cli
from forge.cli.common import err
from forge.client.errors import ForgeAPIError
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
app.add_typer(drift_cli.app, name="drift")
app.add_typer(lora.app, name="lora")
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("run")(run.run)
app.command("worker")(run.worker)
app.command("status")(run.status)
app.command("eval")(eval_cli.eval_)
app.command("cost")(cost.cost)
app.command("economics")(economics_cli.economics)
app.command("export")(export_cli.export)


@app.callback()
def root(
    url: Optional[str] = typer.Option(None, "--url", help="Work against the Forge at this URL (its API), as the "
                                      "tenant of --key; env FORGE_URL. Without it, this machine's Forge."),
    key: Optional[str] = typer.Option(None, "--key", help="The API key for --url; env FORGE_API_KEY."),
) -> None:
    """Forge: distil a teacher model's traffic into a cheaper student."""


def remote_target(args: list[str]) -> tuple[str | None, str | None, list[str]]:
    """(url, key, the other arguments): `--url`/`--key` before the command, else FORGE_URL and FORGE_API_KEY."""
    url, key, rest = os.environ.get("FORGE_URL") or None, os.environ.get("FORGE_API_KEY") or None, list(args)
    while rest and rest[0].split("=", 1)[0] in ("--url", "--key"):
        option, sep, value = rest.pop(0).partition("=")
        if not sep:
            if not rest:
                raise typer.BadParameter(f"{option} needs a value")
            value = rest.pop(0)
        url, key = (value, key) if option == "--url" else (url, value)
    return url, key, rest


def main(argv: list[str] | None = None) -> None:
    try:
        url, key, args = remote_target(sys.argv[1:] if argv is None else argv)
        chosen = app
        if url:
            from forge.cli import remote
            from forge.client import ForgeClient

            remote.connect(ForgeClient(url, key))
            chosen = remote.app
        result = chosen(args=args, standalone_mode=False)
        if isinstance(result, int) and result:
            sys.exit(result)
    except ForgeError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    except ForgeAPIError as exc:  # remote: the server's problem, with what to do
        err.print(f"error: {exc.detail or exc.title} ({exc.status})", markup=False)
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
