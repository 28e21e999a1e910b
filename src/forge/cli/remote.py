"""`forge --url URL --key KEY …`: the same commands against a deployed Forge, through `forge.client.ForgeClient`.

The tenant is the key's; the commands that act on this machine or on Forge's storage itself (serve, worker, storage,
keys, demo, lora, eval) are the operator's and say so. tests/unit/test_cli_remote.py keeps the two trees in step.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from forge.cli.common import out
from forge.cli.datasets import file_format, print_page
from forge.cli.economics import STATUS_DAYS, print_report, window
from forge.services.economics import MAX_DAYS
from forge.cli.labels import DESCRIPTION, NAME, TAGS, labels, print_labelled, print_stats
from forge.cli.remote_registry import add_registry
from forge.cli.run import _config, job_settings
from forge.client import ForgeClient

app = typer.Typer(help="Forge, remotely: the commands against the Forge at --url, as the tenant of --key.",
                  no_args_is_help=True)
jobs = typer.Typer(help="Distillation jobs.", no_args_is_help=True)
datasets = typer.Typer(help="Datasets: upload, build from golden traces, check, list, show.", no_args_is_help=True)
app.add_typer(jobs, name="jobs")
app.add_typer(datasets, name="datasets")
LOCAL_ONLY = {  # what these do happens on the operator's machine or in Forge's own storage, not through the API
    "serve": "serves the API on this machine", "worker": "hosts the engine on this machine",
    "demo": "runs a whole local Forge", "storage": "manages Forge's storage", "keys": "manages API keys in storage",
    "lora": "manages this machine's LoRA server", "eval": "evaluates a model with this machine's settings",
}
LOCAL_ONLY_COMMANDS = {"domain use": "saves the active domain on this machine; give --domain to each command",
                       "drift check": "checks with this machine's judge and storage; the deployed control loop "
                                      "checks every domain on its own"}
_client: ForgeClient | None = None


def connect(client: ForgeClient) -> None:
    global _client
    _client = client


def client() -> ForgeClient:
    if _client is None:
        raise typer.BadParameter("give --url URL and --key KEY (or FORGE_URL and FORGE_API_KEY)")
    return _client


def show_json(value: Any) -> None:
    out.print_json(json.dumps(value.model_dump(mode="json", by_alias=True) if hasattr(value, "model_dump") else value))


def local_only(name: str, why: str) -> Callable[..., None]:
    def command(ctx: typer.Context) -> None:
        raise typer.BadParameter(f"`forge {name}` {why}; run it without --url, where Forge's storage is configured.")

    command.__doc__ = f"Not remote: it {why}."
    return command


for _name, _why in LOCAL_ONLY.items():
    app.command(_name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
        local_only(_name, _why))


# --- jobs --------------------------------------------------------------------------------------------------------


@jobs.command("list")
def jobs_list(limit: int = typer.Option(50, min=1, max=1000)) -> None:
    """Jobs, oldest first."""
    items = client().jobs.list(limit=limit).items
    if not items:
        out.print("No jobs yet.")
    for job in items:
        size = "-" if job.dataset_size is None else str(job.dataset_size)
        out.print(f"{job.job_id}  {job.domain:<11} {job.status.value:<10} examples {size:>6}  "
                  f"{job.created_at:%Y-%m-%d %H:%M}  {job.error or ''}", markup=False)


@jobs.command("show")
def jobs_show(job_id: str) -> None:
    """One job as JSON."""
    show_json(client().jobs.get(job_id))


@jobs.command("events")
def jobs_events(job_id: str, after: int = typer.Option(0, min=0)) -> None:
    """A job's events in order."""
    for event in client().jobs.iter_events(job_id, after=after):
        out.print(f"{event.seq:>5}  {event.time:%H:%M:%S}  {event.level:<7} {event.type:<20} {event.message}",
                  markup=False)


@jobs.command("cancel")
def jobs_cancel(job_id: str) -> None:
    """Cancel a run: its training is stopped at the provider and the job ends CANCELLED."""
    job = client().jobs.cancel(job_id)
    out.print(f"cancel requested for {job.job_id}", markup=False)


@jobs.command("sync")
def jobs_sync(job_id: str) -> None:
    """Ask the provider about a training run now instead of at the next poll."""
    client().jobs.sync(job_id)
    out.print(f"sync requested for {job_id}", markup=False)


@jobs.command("update")
def jobs_update(job_id: str, name: Optional[str] = NAME, description: Optional[str] = DESCRIPTION,
                tag: Optional[List[str]] = TAGS) -> None:
    """Name, describe or tag a job (what is not given stays)."""
    given = labels(name, description, tag)
    job = client().jobs.update(job_id, **given.model_dump(exclude_unset=True))
    print_labelled(job.job_id, job)


# --- datasets ----------------------------------------------------------------------------------------------------


@datasets.command("upload")
def datasets_upload(file: Path, fmt: Optional[str] = typer.Option(None, "--format"),
                    domain: Optional[str] = typer.Option(None), valid_share: Optional[float] = typer.Option(None),
                    seed: Optional[int] = typer.Option(None)) -> None:
    """Store a file of examples as a new dataset; `forge run --dataset ID` trains on it."""
    built = client().datasets.upload(file, format=fmt or file_format(file), domain=domain, valid_share=valid_share,
                                     seed=seed)
    price = "no price for this model" if built.estimated_cost is None else \
        f"~{built.estimated_cost:.2f} {built.currency}"
    out.print(f"Dataset {built.dataset_id}: {built.train} train, {built.valid} valid, "
              f"{sum(built.dropped.values())} dropped; training would bill {built.billed_tokens:,} tokens: {price}.",
              markup=False)
    out.print(f"Train on it: forge run --dataset {built.dataset_id}", markup=False)


@datasets.command("build")
def datasets_build(domain: Optional[str] = typer.Option(None), since: Optional[str] = typer.Option(None),
                   until: Optional[str] = typer.Option(None), max_examples: Optional[int] = typer.Option(None),
                   valid_share: Optional[float] = typer.Option(None), seed: Optional[int] = typer.Option(None),
                   from_file: Optional[Path] = typer.Option(None, "--from-file")) -> None:
    """Curate the domain's golden traces into a new dataset version."""
    if from_file is not None:
        raise typer.BadParameter("a trace file is curated where Forge runs; upload examples with `forge datasets "
                                 "upload FILE`, or import the traces with `forge traces import FILE`", "--from-file")
    built = client().datasets.import_from_traces(domain=domain, since=since, until=until, max_examples=max_examples,
                                                 valid_share=valid_share, seed=seed)
    out.print(f"Dataset {built.dataset_id} (version {built.version}): {built.train} train, {built.valid} valid; "
              f"sha256 {built.sha256}", markup=False)


@datasets.command("validate")
def datasets_validate(file: Path, as_json: bool = typer.Option(False, "--json")) -> None:
    """Check a file as the server would curate it (nothing is stored); exit 1 when it could not be uploaded."""
    report = client().datasets.check(file, format=file_format(file))
    if as_json:
        out.print(json.dumps(report), markup=False)
    else:
        for reject in report.get("rejects", []):
            out.print(f"line {reject.get('line', '?')}: {reject.get('reason')}: {reject.get('detail', '')}",
                      markup=False)
        verdict = "uploadable" if report.get("uploadable") else f"NOT uploadable: {report.get('problem')}"
        out.print(f"{file}: {report.get('train', 0)} train, {report.get('valid', 0)} valid: {verdict}", markup=False)
    if not report.get("uploadable"):
        raise typer.Exit(1)


@datasets.command("list")
def datasets_list(deleted: bool = typer.Option(False, "--deleted"), limit: int = typer.Option(50, min=1, max=1000),
                  continuation: Optional[str] = typer.Option(None)) -> None:
    """List datasets: id, domain, version, sizes."""
    print_page(client().datasets.list(include_deleted=deleted, limit=limit, continuation=continuation))


@datasets.command("show")
def datasets_show(dataset_id: str) -> None:
    """A dataset's record, stats and a preview of its first examples, as JSON."""
    show_json(client().datasets.get(dataset_id))


@datasets.command("update")
def datasets_update(dataset_id: str, name: Optional[str] = NAME, description: Optional[str] = DESCRIPTION,
                    tag: Optional[List[str]] = TAGS) -> None:
    """Name, describe or tag a dataset (what is not given stays)."""
    given = labels(name, description, tag)
    dataset = client().datasets.update(dataset_id, **given.model_dump(exclude_unset=True))
    print_labelled(dataset.dataset_id, dataset)


@datasets.command("delete")
def datasets_delete(dataset_id: str) -> None:
    """Soft delete: the dataset leaves the lists."""
    client().datasets.delete(dataset_id)
    out.print(f"{dataset_id} deleted", markup=False)


@datasets.command("stats")
def datasets_stats() -> None:
    """Datasets by state, domain and source; examples, tokens, estimated cost, and how many jobs used them."""
    print_stats(client().datasets.stats().model_dump(mode="json", by_alias=True))


# --- run, status, cost -------------------------------------------------------------------------------------------


@app.command("run")
def run(domain: Optional[str] = typer.Option(None), provider: Optional[str] = typer.Option(None),
        wait: bool = typer.Option(False, "--wait", help="Follow the run until it ends."),
        threshold: Optional[int] = typer.Option(None), base_model: Optional[str] = typer.Option(None),
        setting: List[str] = typer.Option([], "--set"),
        dataset: Optional[str] = typer.Option(None, "--dataset", help="Fine-tune on this stored dataset.")) -> None:
    """Start a run: on the domain's new golden traces, or on a dataset (--dataset)."""
    config = _config(setting)
    if threshold is not None:
        config["trigger_threshold"] = threshold
    settings = job_settings(config)
    forge = client()
    if dataset:
        accepted = forge.jobs.create(dataset, base_model=base_model, provider=provider, domain=domain,
                                     settings=settings)
    else:
        if base_model:
            settings = settings.model_copy(update={"base_model": base_model})
        accepted = forge.jobs.trigger(domain=domain, provider=provider, settings=settings)
    job = accepted.job
    out.print(f"job {accepted.job_id} started ({job.domain if job else domain}, provider "
              f"{job.provider if job else provider})", markup=False)
    if job and job.cost.get("estimate"):
        estimate = job.cost["estimate"]
        out.print(f"estimate: {estimate.get('billed_tokens', 0):,} billed tokens, cost "
                  f"{estimate.get('cost') if estimate.get('cost') is not None else 'unpriced'}", markup=False)
    if wait:
        final = follow(forge, accepted.job_id)
        if final != "COMPLETED":
            raise typer.Exit(1 if final == "FAILED" else 0)


def follow(forge: ForgeClient, job_id: str, interval_s: float = 1.0) -> str:
    """Print the run's stages and events as they happen, until it ends; its final status."""
    last, after = None, 0
    while True:
        job = forge.jobs.get(job_id)
        if job.status != last:
            out.print(f"[{job.status.value}]", markup=False)
            last = job.status
        for event in forge.jobs.iter_events(job_id, after=after):
            after = event.seq
            out.print(f"  {event.type}: {event.message}", markup=False)
        if job.status.finished:
            reason = job.error or job.reason
            out.print(f"job {job_id} {job.status.value}" + (f": {reason}" if reason else ""), markup=False)
            return job.status.value
        time.sleep(interval_s)


@app.command("status")
def status() -> None:
    """Per domain: traffic, who serves, the last week's economics, the last job; recent jobs and model versions."""
    forge = client()
    overview = forge.insights.overview()
    week = {d["domain"]: d["total"] for d in forge.insights.economics(days=STATUS_DAYS).get("domains", [])}
    for domain in overview.get("domains", []):
        route = domain.get("route") or {}
        name = domain.get("domain", domain.get("name", "?"))
        out.print(f"  {name:<11} serving {route.get('productionModel') or 'teacher'}", markup=False)
        if name in week:
            out.print(f"  {'':<11} last {STATUS_DAYS} days: {window(week[name])}", markup=False)
    for alert in overview.get("alerts", []):
        out.print(f"  alert: {alert}", markup=False)
    for job in list(forge.jobs.iter())[-5:]:
        out.print(f"  {job.job_id}  {job.domain:<11} {job.status.value:<10} {job.error or ''}", markup=False)


@app.command("economics")
def economics(domain: Optional[str] = typer.Option(None), days: int = typer.Option(14, min=1, max=MAX_DAYS),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Per domain and day: the teacher's cost of the routed traffic, its actual cost, the saving, the quality."""
    print_report(client().insights.economics(domain=domain, days=days), as_json=as_json)


@app.command("cost")
def cost(dataset: Optional[str] = typer.Option(None, "--dataset"), file: Optional[Path] = typer.Option(None, "--file"),
         model: Optional[str] = typer.Option(None, "--model"), epochs: Optional[int] = typer.Option(None, "--epochs"),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """Billed tokens, epochs, price and estimated cost of fine-tuning on a dataset or a file."""
    if (dataset is None) == (file is None):
        raise typer.BadParameter("give either --dataset ID or --file F")
    examples = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if file else None
    estimate = client().jobs.estimate_cost(dataset_id=dataset, examples=examples, model_name=model, epochs=epochs)
    if as_json:
        show_json(estimate)
        return
    price = "no price in the table" if estimate.cost is None else f"{estimate.cost:.4f} {estimate.currency}"
    out.print(f"Model {estimate.model}: {estimate.examples:,} examples, {estimate.epochs} epochs, "
              f"{estimate.billed_tokens:,} billed tokens: {price}", markup=False)


add_registry(app, client, show_json)
