"""`forge models`: the registry — list, show (lineage, role, usage), promote, rollback, archive."""

from __future__ import annotations

import json
from typing import Optional

import typer

from forge.cli.common import forge, out
from forge.domain.models import ModelStage
from forge.services import models as service

app = typer.Typer(help="Model versions: list, show, promote, roll back, archive.", no_args_is_help=True)


@app.command("list")
def list_(
    domain: Optional[str] = typer.Option(None, help="Only this domain's versions."),
    tenant: Optional[str] = typer.Option(None),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    limit: int = typer.Option(100, min=1, max=1000),
) -> None:
    """Model versions, oldest first."""
    f = forge()
    page = service.list_models(f.storage, tenant or f.settings.tenant, domain=domain, limit=limit)
    if not page.items and not as_json:
        out.print("No model versions yet.")
    for m in page.items:
        if as_json:
            out.print(json.dumps(m.public()), markup=False)
        else:
            served = m.provider_model_id or m.adapter_uri or "-"
            out.print(f"{m.version_id}  {m.domain:<11} {m.stage.value:<10} {m.created_at:%Y-%m-%d %H:%M}  {served}",
                      markup=False)


@app.command("show")
def show(
    version_id: str,
    tenant: Optional[str] = typer.Option(None),
    days: float = typer.Option(30, min=0.01, help="Usage window in days."),
) -> None:
    """One version as JSON: its role in the route, lineage, and usage with the saving against the teacher."""
    f = forge()
    out.print_json(json.dumps(service.describe_model(f.storage, f.settings, tenant or f.settings.tenant, version_id,
                                                     days=days)))


@app.command("promote")
def promote(
    version_id: str,
    to: Optional[str] = typer.Option(None, "--to", help="'candidate' (canary) or 'production'; default: next stage."),
    canary_percent: Optional[float] = typer.Option(None, min=0.01, max=100, help="Canary share (default: domain's)."),
    tenant: Optional[str] = typer.Option(None),
) -> None:
    """Staging → candidate (the canary) → production; the old production model stays for rollback."""
    f = forge()
    stage = _stage(to)
    change = service.promote_model(f, tenant or f.settings.tenant, version_id, to=stage, canary_percent=canary_percent)
    _report(change)


@app.command("rollback")
def rollback(
    version_id: Optional[str] = typer.Argument(None, help="The production model (default: the domain's)."),
    domain: Optional[str] = typer.Option(None, help="Roll back this domain's production model."),
    tenant: Optional[str] = typer.Option(None),
) -> None:
    """Retire the production model; the previous one (or the teacher, when there was none) serves again."""
    f = forge()
    tenant = tenant or f.settings.tenant
    if version_id:
        change = service.rollback_model(f.storage, tenant, version_id)
    else:
        change = service.rollback_domain(f.storage, tenant, domain or f.settings.domain)
    _report(change)


@app.command("archive")
def archive(version_id: str, tenant: Optional[str] = typer.Option(None)) -> None:
    """Retire a version that is not in production (it stops being the canary or a rollback target)."""
    f = forge()
    _report(service.archive_model(f.storage, tenant or f.settings.tenant, version_id))


def _stage(to: str | None) -> ModelStage | None:
    if to is None:
        return None
    if to not in ("candidate", "production"):
        raise typer.BadParameter(f"--to must be 'candidate' or 'production' (got {to!r}).")
    return ModelStage(to)


def _report(change: service.RegistryChange) -> None:
    route = change.route
    serving = route.production_model or "the teacher"
    canary = f"; canary {route.canary_model} at {route.canary_percent:g}%" if route.canary_model else ""
    out.print(f"{change.model.version_id} is {change.model.stage.value}. {route.domain}: {serving} in production"
              f"{canary}.", markup=False)
