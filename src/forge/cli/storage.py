"""`forge storage`: the Azurite that Forge runs when no storage is configured."""

from __future__ import annotations

import typer

from forge.cli.common import out, settings
from forge.storage.azurite import ManagedAzurite

app = typer.Typer(help="The local storage emulator (Azurite) Forge manages under FORGE_HOME.", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Where storage is: a configured account, or Forge's Azurite and its ports."""
    s = settings()
    if not s.uses_managed_azurite:
        out.print("Using the configured storage account (FORGE_STORAGE_CONNECTION or account URLs).")
        return
    instance = ManagedAzurite(s.home, s.node_modules).running()
    if instance is None:
        out.print(f"Azurite is not running; the next command that needs storage starts it (data in {s.home / 'azurite'}).",
                  markup=False)
        return
    out.print(f"Azurite pid {instance.pid}: blob {instance.blob_port}, queue {instance.queue_port}, "
              f"table {instance.table_port}; data in {s.home / 'azurite' / 'data'}", markup=False)


@app.command("stop")
def stop() -> None:
    """Stop the Azurite this FORGE_HOME started (its data stays on disk)."""
    s = settings()
    stopped = ManagedAzurite(s.home, s.node_modules).stop()
    out.print("Azurite stopped." if stopped else "No Azurite started by Forge is running here.")
