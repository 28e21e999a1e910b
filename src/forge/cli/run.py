"""`forge run`, `forge worker`, `forge status`: start and follow runs, host the engine, see where things stand."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import List, Optional

import typer
from pydantic import ValidationError

from forge.cli.common import forge, out
from forge.cli.economics import STATUS_DAYS, window
from forge.domain.job_settings import JobSettings
from forge.domain.models import DistillationJob
from forge.services import capture, domains, economics, runs
from forge.services.traces import count_golden
from forge.workflow.worker import Worker, engine_for, running_worker


def run(
    domain: Optional[str] = typer.Option(None, help="Domain to distil (default: the active one)."),
    provider: Optional[str] = typer.Option(None, help="local, azure-openai, openai or azureml (default: FORGE_PROVIDER)."),
    tenant: Optional[str] = typer.Option(None),
    wait: bool = typer.Option(False, "--wait", help="Follow the run until it ends."),
    threshold: Optional[int] = typer.Option(None, help="Golden traces needed (default: FORGE_TRIGGER_THRESHOLD)."),
    base_model: Optional[str] = typer.Option(None, help="Student base model (default: FORGE_STUDENT_BASE_MODEL)."),
    setting: List[str] = typer.Option([], "--set", help="Job setting key=value (e.g. poll_interval_s=5, "
                                      "hyperparameters.n_epochs=3); docs/security.md lists them."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Fine-tune on this stored dataset (`forge "
                                          "datasets upload`): no gather or curate; its domain unless --domain."),
) -> None:
    """Start a distillation run now: on the domain's new golden traces, or on a dataset (--dataset)."""
    f = forge()
    config = _config(setting)
    if threshold is not None:
        config["trigger_threshold"] = threshold
    if base_model:
        config["base_model"] = base_model
    settings = job_settings(config)
    external = running_worker(f.settings.home) is not None
    with engine_for(f) as engine:
        # The CLI is the operator's: it may name a local model folder and any provider.
        job, _ = asyncio.run(runs.trigger(f, engine, tenant=tenant or f.settings.tenant,
                                          domain=domain if dataset else (domain or f.settings.domain),
                                          provider=provider, settings=settings, by_operator=True, dataset_id=dataset))
        out.print(f"job {job.job_id} started ({job.domain}, provider {job.provider})", markup=False)
        if not external and not wait:
            out.print("No `forge worker` is running, so this command hosts the run and follows it to the end.")
        if wait or not external:
            final = follow(f, job)
            if final.status.value != "COMPLETED":
                raise typer.Exit(1 if final.status.value == "FAILED" else 0)


def follow(f, job: DistillationJob, interval_s: float = 0.5, quiet: bool = False) -> DistillationJob:
    """Print the run's stages, training progress and loss as they happen, until it ends (`quiet`: stages only)."""
    last_status, after, began = None, 0, time.monotonic()
    while True:
        job = f.storage.jobs.get(job.tenant, job.job_id)
        if job.status != last_status:
            out.print(f"[{job.status.value}] at {time.monotonic() - began:.0f} s", markup=False)
            last_status = job.status
        page = f.storage.events.list(job.job_id, after=after, limit=1000)
        for event in page.items:
            after = event.seq
            if quiet:
                continue
            if event.type == "training.metrics":
                d = event.data
                valid = f" valid {d['valid_loss']:.4f}" if d.get("valid_loss") is not None else ""
                out.print(f"  step {d.get('step', '?')}: loss {d.get('loss', float('nan')):.4f}{valid}", markup=False)
            else:
                out.print(f"  {event.type}: {event.message}", markup=False)
        if job.status.finished:
            reason = job.error or job.reason
            out.print(f"job {job.job_id} {job.status.value}" + (f": {reason}" if reason else ""), markup=False)
            return job
        time.sleep(interval_s)


def worker(port: Optional[int] = typer.Option(None, help="gRPC port for the engine (default: a free one).")) -> None:
    """Host the engine: resume unfinished jobs, fire the nightly run from FORGE_SCHEDULE_CRON, until stopped."""
    f = forge()
    w = Worker(f, port=port)
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    signal.signal(signal.SIGINT, lambda *_: w.stop())
    out.print(f"Forge worker on {w.engine.address}; nightly schedule '{f.settings.schedule_cron}' "
              f"({'enabled' if f.settings.enabled else 'disabled: FORGE_ENABLED=false'})", markup=False)
    w.run()


def status(tenant: Optional[str] = typer.Option(None)) -> None:
    """Traces and golden traces per domain with the last week's economics, recent jobs, model versions and what is
    in production."""
    f = forge()
    tenant = tenant or f.settings.tenant
    out.print(f"Tenant {tenant}", markup=False)
    week = {d.domain: d.total for d in economics.report(f, tenant, days=STATUS_DAYS).domains}
    for domain in domains.names(f, tenant):
        counts = count_golden(f.storage, tenant, domain, f.settings.min_score)
        route = f.storage.routes.get(tenant, domain)
        live = route.production_model or "teacher"
        canary = f", canary {route.canary_model} at {route.canary_percent:g}%" if route.canary_model else ""
        out.print(f"  {domain:<11} traces {counts.total:>7}  golden {counts.golden:>7}  serving {live}{canary}",
                  markup=False)
        if domain in week:
            out.print(f"  {'':<11} last {STATUS_DAYS} days: {window(week[domain].model_dump(by_alias=True))}",
                      markup=False)
    _capture_status(f, tenant)
    jobs = list(f.storage.jobs.scan(tenant))[-5:]
    out.print("Recent jobs:" if jobs else "No jobs yet.")
    for job in jobs:
        out.print(f"  {job.job_id}  {job.domain:<11} {job.status.value:<10} {job.error or ''}", markup=False)
    models = f.storage.models.list(tenant, limit=1000).items
    out.print("Model versions:" if models else "No model versions yet.")
    for model in models:
        score = model.metrics.get("score")
        shown = f"{score:.1f}" if isinstance(score, (int, float)) else "-"
        out.print(f"  {model.version_id}  {model.domain:<11} {model.stage.value:<10} score {shown}", markup=False)


def _capture_status(f, tenant: str) -> None:
    """The router's capture: what was captured, written and poisoned today, and how far the drainer lags."""
    try:
        shown = capture.status(f, tenant)
    except Exception as exc:  # status still shows the rest
        out.print(f"Trace capture: unknown ({type(exc).__name__})", markup=False)
        return
    today, queue = shown["today"], shown["queue"]
    lag = "none" if queue["lagSeconds"] is None else f"{queue['lagSeconds']:.0f} s"
    out.print(f"Trace capture today: captured {today['captured']}, written {today['written']}, poisoned "
              f"{today['poisoned']}; waiting {queue['waiting']}, lag {lag}", markup=False)
    for poisoned in shown["recentlyPoisoned"]:
        out.print(f"  poisoned {poisoned['messageId']} at {poisoned['at']}: {poisoned['reason']}", markup=False)


def job_settings(config: dict) -> JobSettings:
    """The `--set` pairs as validated job settings; a bad one stops the command naming the key and what is allowed."""
    try:
        return JobSettings.model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems, param_hint="--set") from None


def _config(pairs: List[str]) -> dict:
    """`key=value` pairs; a dotted key (hyperparameters.n_epochs=8) sets a nested value."""
    config: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"'{pair}' is not key=value")
        *path, leaf = key.split(".")
        target = config
        for part in path:
            target = target.setdefault(part, {})
        target[leaf] = _scalar(value)
    return config


def _scalar(value: str) -> object:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)
