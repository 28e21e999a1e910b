"""`forge keys`: API keys, stored only as hashes."""

from __future__ import annotations

from typing import List, Optional

import typer

from forge.cli.common import forge, out

app = typer.Typer(help="API keys for the HTTP API and the router.", no_args_is_help=True)


@app.command("create")
def create(
    tenant: Optional[str] = typer.Option(None, help="Tenant the key acts for (default: FORGE_TENANT)."),
    name: str = typer.Option("default", help="A label to recognise the key by."),
    scope: List[str] = typer.Option(["read", "write"], help="read and/or write; repeat the option for both."),
) -> None:
    """Create a key and print it once; only its hash is stored."""
    f = forge()
    key, record = f.storage.keys.create(tenant or f.settings.tenant, name, scope)
    out.print(key, markup=False)
    out.print(f"id {record.key_hash[:12]}  tenant {record.tenant}  scopes {','.join(record.scopes)}  "
              "(store the key now: it cannot be shown again)", markup=False)


@app.command("list")
def list_(tenant: Optional[str] = typer.Option(None)) -> None:
    """The tenant's keys: id, name, scopes, state; never the keys themselves."""
    f = forge()
    for record in f.storage.keys.list(tenant or f.settings.tenant, limit=1000).items:
        state = "revoked" if record.revoked else "active"
        out.print(f"{record.key_hash[:12]}  {record.name}  {','.join(record.scopes)}  {state}  "
                  f"{record.created_at:%Y-%m-%d}", markup=False)


@app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The id `forge keys list` shows."), tenant: Optional[str] = typer.Option(None)) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    f = forge()
    record = f.storage.keys.revoke(tenant or f.settings.tenant, key_id)
    out.print(f"revoked {record.key_hash[:12]} ({record.name})")
