"""`forge datasets`: build one from golden traces (or a file), validate a file, list and show them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, List, Optional

import typer

from forge.cli.common import err, forge, out
from forge.cli.labels import DESCRIPTION, NAME, TAGS, labels, print_labelled, print_stats
from forge.services import summaries
from forge.services.labels import label_dataset
from forge.services import datasets as service
from forge.services.curation import CurateRequest, curate

app = typer.Typer(help="Datasets: build them from golden traces, validate files, list and show them.",
                  no_args_is_help=True)


@app.command("build")
def build(
    domain: Optional[str] = typer.Option(None, help="Domain (default: the active one)."),
    since: Optional[datetime] = typer.Option(None, help="Only traces from this time (ISO 8601)."),
    until: Optional[datetime] = typer.Option(None, help="Only traces before this time (the cut-off)."),
    from_file: Optional[Path] = typer.Option(None, "--from-file", help="Read traces from this JSONL file instead."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Also write train/valid/rejects/stats here."),
    max_examples: Optional[int] = typer.Option(None, min=10, help="Keep at most this many, newest first."),
    valid_share: float = typer.Option(0.1, min=0, max=0.5, help="Share of conversations held out for validation."),
    seed: int = typer.Option(42, help="Seed of the train/valid split."),
    tenant: Optional[str] = typer.Option(None, help="Tenant (default: FORGE_TENANT)."),
    workers: Optional[int] = typer.Option(None, min=1, max=256, help="Processes to curate on (default: "
                                          "FORGE_CURATE_WORKERS, else every core); the same files on any number."),
) -> None:
    """Curate golden traces into a new dataset version: filter, dedupe, scrub PII, split, validate, store."""
    f = forge()
    request = CurateRequest(
        tenant=tenant or f.settings.tenant, domain=domain or f.settings.domain, since=since, until=until,
        max_examples=max_examples, valid_share=valid_share, seed=seed,
        source_file=str(from_file) if from_file else None, out_dir=str(out_dir) if out_dir else None,
        workers=workers,
    )
    result = curate(f, request)
    out.print(f"Dataset {result.dataset_id} (version {result.version}"
              f"{', parent ' + result.parent_id if result.parent_id else ''}): {result.train} train, "
              f"{result.valid} valid; sha256 {result.sha256}", markup=False)
    out.print(f"Read {result.counts.get('read', 0)}, kept {result.counts.get('kept', 0)}, "
              f"dropped {sum(result.dropped.values())}:", markup=False)
    for reason, count in sorted(result.dropped.items(), key=lambda kv: -kv[1]):
        out.print(f"  {reason}: {count}", markup=False)
    if result.pii:
        out.print("PII found (" + ", ".join(f"{k} {v}" for k, v in sorted(result.pii.items())) + ")", markup=False)
    cost = "no price for this model" if result.estimated_cost is None else f"~{result.estimated_cost:.2f} {result.currency}"
    out.print(f"Training would bill {result.billed_tokens:,} tokens over {result.epochs} epochs: {cost}.", markup=False)
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False)
    if out_dir:
        out.print(f"Files in {out_dir}: train.jsonl valid.jsonl rejects.jsonl stats.json", markup=False)


@app.command("validate")
def validate(
    file: Path = typer.Argument(..., help="A chat fine-tuning JSONL file."),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON."),
) -> None:
    """Check a JSONL file as OpenAI would; each problem is printed with its line number; exit 1 when invalid."""
    report = service.validate_file(forge(), file)
    if as_json:
        out.print(json.dumps(report.as_dict()), markup=False)
    else:
        for p in report.problems:
            where = f"line {p['line']}" if p["line"] else "file"
            out.print(f"{where}: {p['code']}: {p['message']}", markup=False)
        for warning in report.warnings:
            out.print(f"warning: {warning}", markup=False)
        verdict = "valid" if report.valid else f"INVALID ({len(report.problems)} problems)"
        out.print(f"{file}: {report.examples} examples, ~{report.tokens:,} billed tokens per epoch: {verdict}",
                  markup=False)
    if not report.valid:
        raise typer.Exit(1)


@app.command("list")
def list_(
    tenant: Optional[str] = typer.Option(None),
    deleted: bool = typer.Option(False, "--deleted", help="Include deleted datasets."),
    limit: int = typer.Option(50, min=1, max=1000),
    continuation: Optional[str] = typer.Option(None, help="Token printed by the previous page."),
) -> None:
    """List datasets: id, domain, version, sizes."""
    f = forge()
    print_page(service.list_datasets(f, tenant or f.settings.tenant, include_deleted=deleted, limit=limit,
                                     continuation=continuation))


def print_page(page: Any) -> None:
    """A page of datasets, one line each, and the token of the next (also the remote `forge datasets list`'s)."""
    for d in page.items:
        gone = "  (deleted)" if d.deleted_at else ""
        out.print(f"{d.dataset_id}  {d.domain:<12} v{d.version:<3} train {d.counts.get('train', 0):>6}  "
                  f"valid {d.counts.get('valid', 0):>5}  {d.created_at:%Y-%m-%d %H:%M}{gone}", markup=False)
    if page.continuation:
        out.print(f"more: --continuation {page.continuation}", markup=False)


@app.command("show")
def show(dataset_id: str, tenant: Optional[str] = typer.Option(None)) -> None:
    """A dataset's record, stats and a preview of its first examples, as JSON."""
    f = forge()
    out.print(json.dumps(service.show(f, tenant or f.settings.tenant, dataset_id), indent=2, ensure_ascii=False),
              markup=False)


@app.command("upload")
def upload(
    file: Path = typer.Argument(..., help="Examples: chat JSONL, CSV with prompt/response columns, or a JSON array."),
    fmt: Optional[str] = typer.Option(None, "--format", help="jsonl, csv or json (default: from the file's suffix)."),
    domain: Optional[str] = typer.Option(None, help="Domain (default: the active one)."),
    valid_share: float = typer.Option(0.1, min=0, max=0.5, help="Share held out for validation."),
    seed: int = typer.Option(42, help="Seed of the train/valid split."),
    tenant: Optional[str] = typer.Option(None),
) -> None:
    """Store a file of examples as a new dataset (validated, scrubbed of PII, deduplicated, split); `forge run
    --dataset ID` trains on it."""
    f = forge()
    with open(file, "rb") as data:
        result = service.upload(f, tenant or f.settings.tenant, domain or f.settings.domain, data,
                                fmt or file_format(file), valid_share=valid_share, seed=seed)
    _built(result.dataset_id, result.train, result.valid, sum(result.dropped.values()), result.billed_tokens,
           result.estimated_cost, result.currency)


@app.command("update")
def update(dataset_id: str, name: Optional[str] = NAME, description: Optional[str] = DESCRIPTION,
           tag: Optional[List[str]] = TAGS, tenant: Optional[str] = typer.Option(None)) -> None:
    """Name, describe or tag a dataset (what is not given stays)."""
    f = forge()
    dataset = label_dataset(f, tenant or f.settings.tenant, dataset_id, labels(name, description, tag))
    print_labelled(dataset.dataset_id, dataset)


@app.command("delete")
def delete(dataset_id: str, tenant: Optional[str] = typer.Option(None)) -> None:
    """Soft delete: the dataset leaves the lists; its files stay for the models trained on it."""
    f = forge()
    service.delete(f, tenant or f.settings.tenant, dataset_id)
    out.print(f"{dataset_id} deleted", markup=False)


@app.command("stats")
def stats(tenant: Optional[str] = typer.Option(None)) -> None:
    """Datasets by state, domain and source; examples, tokens, estimated cost, and how many jobs used them."""
    f = forge()
    print_stats(summaries.dataset_stats(f, tenant or f.settings.tenant))


def file_format(file: Path) -> str:
    """jsonl, csv or json from a file's suffix (.ndjson and .jsonl are JSONL)."""
    return {".csv": "csv", ".json": "json"}.get(file.suffix.lower(), "jsonl")


def _built(dataset_id: str, train: int, valid: int, dropped: int, billed: int, cost: float | None,
           currency: str) -> None:
    price = "no price for this model" if cost is None else f"~{cost:.2f} {currency}"
    out.print(f"Dataset {dataset_id}: {train} train, {valid} valid, {dropped} dropped; training would bill "
              f"{billed:,} tokens: {price}.", markup=False)
    out.print(f"Train on it: forge run --dataset {dataset_id}", markup=False)
