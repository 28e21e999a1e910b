"""`forge models`: the registry — list, show (lineage, role, usage), promote, rollback, archive."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from forge.cli.common import forge, out
from forge.cli.labels import DESCRIPTION, NAME, TAGS, labels, print_labelled, print_stats
from forge.services import deployments, summaries
from forge.services.labels import label_model
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
    lora = dict(lora=f.lora_server(), drain_s=f.settings.lora_drain_s)
    if version_id:
        change = service.rollback_model(f.storage, tenant, version_id, **lora)
    else:
        change = service.rollback_domain(f.storage, tenant, domain or f.settings.domain, **lora)
    _report(change)


@app.command("archive")
def archive(version_id: str, tenant: Optional[str] = typer.Option(None)) -> None:
    """Retire a version that is not in production (it stops being the canary or a rollback target)."""
    f = forge()
    _report(service.archive_model(f.storage, tenant or f.settings.tenant, version_id, lora=f.lora_server(),
                                  drain_s=f.settings.lora_drain_s))


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
    for note in change.notes:  # the LoRA server: a student answering in-process, an adapter unloading after a drain
        out.print(f"  {note}", markup=False)


@app.command("update")
def update(version_id: str, name: Optional[str] = NAME, description: Optional[str] = DESCRIPTION,
           tag: Optional[List[str]] = TAGS, tenant: Optional[str] = typer.Option(None)) -> None:
    """Name, describe or tag a model version (what is not given stays)."""
    f = forge()
    model = label_model(f, tenant or f.settings.tenant, version_id, labels(name, description, tag))
    print_labelled(model.version_id, model)


@app.command("delete")
def delete(version_id: str, tenant: Optional[str] = typer.Option(None)) -> None:
    """Delete a version that serves nothing (one in production or the canary is refused, saying what to do)."""
    f = forge()
    deployments.delete_model(f, tenant or f.settings.tenant, version_id)
    out.print(f"{version_id} deleted", markup=False)


@app.command("deploy")
def deploy(
    version_id: str,
    domain: Optional[str] = typer.Option(None, help="The route (domain) to serve it on (default: the model's)."),
    canary: Optional[float] = typer.Option(None, "--canary", min=0.01, max=100,
                                           help="Serve it as the canary at this percent (default: production)."),
    tenant: Optional[str] = typer.Option(None),
) -> None:
    """Serve a model on a domain's route, in production or as a canary; another domain gets its own version."""
    f = forge()
    stage = "canary" if canary is not None else "production"
    _report(deployments.deploy_model(f, tenant or f.settings.tenant, version_id, domain=domain, stage=stage,
                                     percent=canary))


@app.command("stats")
def stats(days: float = typer.Option(30, min=0.01, help="Usage window in days."),
          tenant: Optional[str] = typer.Option(None)) -> None:
    """Versions by stage and domain, what serves, training tokens and cost, traffic and saving over the window."""
    f = forge()
    print_stats(summaries.model_stats(f, tenant or f.settings.tenant, days=days))
