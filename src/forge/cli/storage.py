"""`forge storage`: the Azurite that Forge runs when no storage is configured, and moving a store to new keys."""

from __future__ import annotations

from typing import Optional

import typer

from forge.cli.common import forge, out, settings
from forge.services.traces import migrate_trace_keys
from forge.storage.azurite import ManagedAzurite

app = typer.Typer(help="The local storage emulator (Azurite) Forge manages under FORGE_HOME, and key migrations.",
                  no_args_is_help=True)


@app.command("migrate")
def migrate(tenant: Optional[str] = typer.Option(None, help="Only this tenant's traces (default: all).")) -> None:
    """Move traces to the sharded keys (FORGE_TRACE_SHARDS): idempotent, and resumable after a crash."""
    f = forge()
    moved = migrate_trace_keys(f.storage, tenant=tenant,
                               progress=lambda n: out.print(f"  {n:,} traces moved so far", markup=False))
    out.print(f"{moved:,} traces moved to {f.storage.traces.shards} shards per tenant, domain and day"
              + ("; nothing left to move." if moved == 0 else "."), markup=False)


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
