"""`forge jobs`: list jobs, show one, follow its events."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from forge.cli.common import forge, out
from forge.cli.labels import DESCRIPTION, NAME, TAGS, labels, print_labelled
from forge.services.labels import label_job
from forge.services import jobs as service
from forge.services import runs
from forge.workflow.worker import engine_for

app = typer.Typer(help="Distillation jobs.", no_args_is_help=True)


@app.command("list")
def list_(tenant: Optional[str] = typer.Option(None), limit: int = typer.Option(50, min=1, max=1000)) -> None:
    """Jobs, oldest first."""
    f = forge()
    page = service.list_jobs(f.storage, tenant or f.settings.tenant, limit=limit)
    if not page.items:
        out.print("No jobs yet.")
    for job in page.items:
        size = "-" if job.dataset_size is None else str(job.dataset_size)
        out.print(f"{job.job_id}  {job.domain:<11} {job.status.value:<10} examples {size:>6}  "
                  f"{job.created_at:%Y-%m-%d %H:%M}  {job.error or ''}", markup=False)


@app.command("show")
def show(job_id: str, tenant: Optional[str] = typer.Option(None)) -> None:
    """One job as JSON."""
    f = forge()
    out.print_json(json.dumps(service.get_job(f.storage, tenant or f.settings.tenant, job_id).public()))


@app.command("events")
def events(job_id: str, tenant: Optional[str] = typer.Option(None), after: int = typer.Option(0, min=0)) -> None:
    """A job's events in order."""
    f = forge()
    page = service.job_events(f.storage, tenant or f.settings.tenant, job_id, after=after, limit=1000)
    for event in page.items:
        out.print(f"{event.seq:>5}  {event.time:%H:%M:%S}  {event.level:<7} {event.type:<20} {event.message}", markup=False)


@app.command("cancel")
def cancel(job_id: str, tenant: Optional[str] = typer.Option(None)) -> None:
    """Cancel a run: its training is stopped at the provider and the job ends CANCELLED."""
    f = forge()
    with engine_for(f) as engine:
        job = runs.run_sync(runs.cancel(f, engine, tenant or f.settings.tenant, job_id))
    out.print(f"cancel requested for {job.job_id}" if not job.status.finished else f"{job.job_id} {job.status.value}")


@app.command("sync")
def sync(job_id: str, tenant: Optional[str] = typer.Option(None)) -> None:
    """Ask the provider about a training run now instead of at the next poll."""
    f = forge()
    with engine_for(f) as engine:
        runs.run_sync(runs.sync(f, engine, tenant or f.settings.tenant, job_id))
    out.print(f"sync requested for {job_id}")


@app.command("update")
def update(job_id: str, name: Optional[str] = NAME, description: Optional[str] = DESCRIPTION,
           tag: Optional[List[str]] = TAGS, tenant: Optional[str] = typer.Option(None)) -> None:
    """Name, describe or tag a job (what is not given stays)."""
    f = forge()
    job = label_job(f, tenant or f.settings.tenant, job_id, labels(name, description, tag))
    print_labelled(job.job_id, job)
