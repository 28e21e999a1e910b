"""The remote `forge models`, `traces`, `domain`, `canary`, `drift` and `export` (see cli/remote.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from forge.cli.canary import CANDIDATE, print_stages
from forge.cli.common import out
from forge.cli.labels import DESCRIPTION, NAME, TAGS, labels, print_labelled, print_stats

BATCH = 1000  # traces per POST /api/v1/traces


def add_registry(app: typer.Typer, client: Callable[[], Any], show_json: Callable[[Any], None]) -> None:
    """Add the registry's command groups to the remote app."""
    models = typer.Typer(help="Model versions.", no_args_is_help=True)
    traces = typer.Typer(help="Traces.", no_args_is_help=True)
    domain = typer.Typer(help="Domains: yours and the packaged templates.", no_args_is_help=True)
    canary = typer.Typer(help="A domain's canary.", no_args_is_help=True)
    drift = typer.Typer(help="A domain's drift checks.", no_args_is_help=True)
    for name, group in (("models", models), ("traces", traces), ("domain", domain), ("canary", canary),
                        ("drift", drift)):
        app.add_typer(group, name=name)

    def report(change: Any) -> None:
        route = change.route
        serving = route.production_model or "the teacher"
        extra = f"; canary {route.canary_model} at {route.canary_percent:g}%" if route.canary_model else ""
        out.print(f"{change.model.version_id} is {change.model.stage.value}. {route.domain}: {serving} in production"
                  f"{extra}.", markup=False)
        for note in change.notes:
            out.print(f"  {note}", markup=False)

    @models.command("list")
    def models_list(domain: Optional[str] = typer.Option(None), as_json: bool = typer.Option(False, "--json"),
                    limit: int = typer.Option(100, min=1, max=1000)) -> None:
        """Model versions, oldest first."""
        for m in client().models.list(domain=domain, limit=limit).items:
            if as_json:
                out.print(json.dumps(m.model_dump(mode="json", by_alias=True)), markup=False)
            else:
                out.print(f"{m.version_id}  {m.domain:<11} {m.stage.value:<10} {m.created_at:%Y-%m-%d %H:%M}  "
                          f"{m.provider_model_id or m.adapter_uri or '-'}", markup=False)

    @models.command("show")
    def models_show(version_id: str, days: float = typer.Option(30, min=0.01)) -> None:
        """One version as JSON: role, lineage and usage."""
        show_json(client().models.get(version_id, days=days))

    @models.command("promote")
    def models_promote(version_id: str, to: Optional[str] = typer.Option(None, "--to"),
                       canary_percent: Optional[float] = typer.Option(None, min=0.01, max=100)) -> None:
        """Staging → candidate (the canary) → production."""
        report(client().models.promote(version_id, stage=to, canary_percent=canary_percent))

    @models.command("rollback")
    def models_rollback(version_id: Optional[str] = typer.Argument(None),
                        domain: Optional[str] = typer.Option(None)) -> None:
        """Retire the production model; the previous one (or the teacher) serves again."""
        forge = client()
        if not version_id:
            found = forge.domains.get(domain) if domain else None
            version_id = ((found or {}).get("route") or {}).get("productionModel")
            if not version_id:
                raise typer.BadParameter("give the production model's id (`forge models list`)")
        report(forge.models.rollback(version_id))

    @models.command("archive")
    def models_archive(version_id: str) -> None:
        """Retire a version that is not in production."""
        report(client().models.archive(version_id))

    @models.command("update")
    def models_update(version_id: str, name: Optional[str] = NAME, description: Optional[str] = DESCRIPTION,
                      tag: Optional[List[str]] = TAGS) -> None:
        """Name, describe or tag a model version (what is not given stays)."""
        model = client().models.update(version_id, **labels(name, description, tag).model_dump(exclude_unset=True))
        print_labelled(model.version_id, model)

    @models.command("delete")
    def models_delete(version_id: str) -> None:
        """Delete a version that serves nothing."""
        client().models.delete(version_id)
        out.print(f"{version_id} deleted", markup=False)

    @models.command("deploy")
    def models_deploy(version_id: str, domain: Optional[str] = typer.Option(None),
                      canary: Optional[float] = typer.Option(None, "--canary", min=0.01, max=100)) -> None:
        """Serve a model on a domain's route, in production or as a canary."""
        report(client().models.deploy(version_id, domain=domain, stage="canary" if canary is not None else
                                      "production", percent=canary))

    @models.command("stats")
    def models_stats(days: float = typer.Option(30, min=0.01)) -> None:
        """Versions by stage and domain, training cost, traffic and saving."""
        print_stats(client().models.stats(days=days).model_dump(mode="json", by_alias=True))

    @traces.command("import")
    def traces_import(file: Path, domain: Optional[str] = typer.Option(None),
                      quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
        """Send a JSONL file of traces in batches; each rejected line is printed with its reason."""
        stream = sys.stdin if str(file) == "-" else open(file, encoding="utf-8")
        imported = rejected = line_no = 0
        with stream:
            batch: list[tuple[int, Any]] = []
            for line_no, line in enumerate(stream, start=1):
                if line.strip():
                    try:
                        batch.append((line_no, json.loads(line)))
                    except ValueError:
                        rejected += 1
                        quiet or out.print(f"line {line_no}: invalid_json", markup=False)
                if len(batch) == BATCH:
                    imported, rejected = _send(client(), batch, domain, quiet, imported, rejected)
                    batch = []
            if batch:
                imported, rejected = _send(client(), batch, domain, quiet, imported, rejected)
        out.print(f"→ {imported} traces imported, {rejected} lines rejected", markup=False)

    @traces.command("list")
    def traces_list(domain: Optional[str] = typer.Option(None), limit: int = typer.Option(20, min=1, max=1000),
                    continuation: Optional[str] = typer.Option(None),
                    as_json: bool = typer.Option(False, "--json")) -> None:
        """List traces, oldest first."""
        page = client().traces.list(domain=domain, limit=limit, continuation=continuation)
        for trace in page.items:
            if as_json:
                out.print(json.dumps(trace.model_dump(mode="json", by_alias=True), ensure_ascii=False), markup=False)
                continue
            prompt = next((m.get("content") for m in reversed(trace.messages) if m.get("role") == "user"), "") or ""
            verdict = trace.feedback or ("-" if trace.score is None else f"{trace.score:g}")
            out.print(f"{trace.id}  {trace.created_at:%Y-%m-%d %H:%M}  {verdict:>8}  {str(prompt)[:60]!r}",
                      markup=False)
        if page.continuation:
            out.print(f"more: --continuation {page.continuation}", markup=False)

    @traces.command("feedback")
    def traces_feedback(trace_id: str, verdict: str) -> None:
        """Mark a trace approved (golden) or rejected."""
        out.print(f"{trace_id}: feedback {client().traces.feedback(trace_id, feedback=verdict).feedback}",
                  markup=False)

    @traces.command("score")
    def traces_score(trace_id: str, value: float) -> None:
        """Set a trace's score."""
        out.print(f"{trace_id}: score {client().traces.feedback(trace_id, score=value).score:g}", markup=False)

    @domain.command("list")
    def domain_list() -> None:
        """Your domains and the templates."""
        for row in client().domains.list()["items"]:
            kind = f"v{row.get('version')}" if row.get("kind") == "tenant" else "template"
            out.print(f"  {row['name']:<14} {kind:<9} {row.get('task', ''):<15}{row.get('description', '')}",
                      markup=False)

    @domain.command("show")
    def domain_show(name: str) -> None:
        show_json(client().domains.get(name))

    @domain.command("create")
    def domain_create(name: str, template: Optional[str] = typer.Option(None, "--from"),
                      file: Optional[Path] = typer.Option(None, "--file", help="A domain file (JSON here).")) -> None:
        """A domain of your own: a copy of a template, or a domain file's settings."""
        config = json.loads(file.read_text(encoding="utf-8")) if file else None
        record = client().domains.create(name, template=template, config=config)
        out.print(f"created {name} v{record.get('version')}", markup=False)

    @domain.command("edit")
    def domain_edit(name: str, setting: List[str] = typer.Option([], "--set")) -> None:
        """Change settings by dotted key (--set gates.min_score=70)."""
        from forge.cli.run import _scalar

        flat = {key: _scalar(value) for key, _, value in (pair.partition("=") for pair in setting)}
        record = client().domains.edit(name, flat)
        out.print(f"{name} v{record.get('version')}", markup=False)

    @domain.command("export")
    def domain_export(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
        out.print(client().domains.export(name, format="json" if as_json else "toml"), markup=False)

    for verb, enabled in (("disable", False), ("enable", True)):
        domain.command(verb)(_switch(client, enabled))

    @domain.command("delete")
    def domain_delete(name: str, force: bool = typer.Option(False, "--force")) -> None:
        client().domains.delete(name, force=force)
        out.print(f"deleted {name}", markup=False)

    @domain.command("history")
    def domain_history(name: str) -> None:
        for version in client().domains.versions(name)["items"]:
            out.print(f"v{version.get('version')}  {version.get('updatedAt', '')[:19]}  {version.get('actor') or ''}  "
                      f"{'; '.join(version.get('change') or [])}", markup=False)

    @domain.command("benchmark")
    def domain_benchmark(name: str, file: Optional[Path] = typer.Argument(None),
                         remove: bool = typer.Option(False, "--remove")) -> None:
        """Upload the domain's own benchmark tasks (JSONL), or --remove them."""
        if not remove and file is None:
            raise typer.BadParameter("give a JSONL file of tasks, or --remove")
        client().domains.set_benchmark(name, None if remove else file)
        out.print(f"{name}: benchmark {'removed' if remove else 'stored'}", markup=False)

    @domain.command("evalset")
    def domain_evalset(name: str) -> None:
        show_json(client().domains.eval_set(name))

    @domain.command("results")
    def domain_results(name: str, job: str = typer.Option(..., help="The evaluated job.")) -> None:
        show_json(client().jobs.evaluation(job))

    @canary.command("show")
    def canary_show(domain_name: str, candidate: Optional[str] = CANDIDATE) -> None:
        show_json(client().canary.get(domain_name, candidate=candidate))

    @canary.command("report")
    def canary_report(domain_name: str, candidate: Optional[str] = CANDIDATE) -> None:
        """The shadow report per stage (of an earlier candidate with --candidate)."""
        print_stages(domain_name, client().canary.get(domain_name, candidate=candidate))

    for action in ("pin", "pause", "resume", "skip"):
        canary.command(action)(_control(client, action))

    @drift.command("show")
    def drift_show(domain_name: str, days: Optional[float] = typer.Option(None, min=0.001, max=90)) -> None:
        show_json(client().drift.get(domain_name, days=days))

    @app.command("export")
    def export(version_id: str, fmt: str = typer.Option(..., "--format"), quant: Optional[str] = typer.Option(None),
               to: Optional[Path] = typer.Option(None, "--out", help="Download the files into this folder.")) -> None:
        """Export a LoRA student on the server; --out downloads its files."""
        forge = client()
        done = forge.models.export(version_id, format=fmt, quant=quant)
        for file in done.get("files", []):
            out.print(f"  {file['name']}  {file.get('bytes', 0):,} bytes", markup=False)
            if to is not None:
                target = to / file["name"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(forge.models.download(version_id, done["label"], file["name"]))
        if to is not None:
            out.print(f"downloaded to {to}", markup=False)


def _send(forge: Any, batch: list[tuple[int, Any]], domain: str | None, quiet: bool, imported: int,
          rejected: int) -> tuple[int, int]:
    from forge.client import InvalidRequest

    try:
        result = forge.traces.ingest([record for _, record in batch], domain=domain)
        refused = result.rejected
        imported += result.imported
    except InvalidRequest as exc:  # every record of the batch refused: the problem lists them
        refused = exc.problem.get("rejected") or []
    for reject in refused:
        if not quiet:
            out.print(f"line {batch[reject['index']][0]}: {reject['reason']}: {reject.get('detail', '')}",
                      markup=False)
    return imported, rejected + len(refused)


def _switch(client: Callable[[], Any], enabled: bool) -> Callable[[str], None]:
    def command(name: str) -> None:
        client().domains.set_enabled(name, enabled)
        out.print(f"{name} {'enabled' if enabled else 'disabled'}", markup=False)

    command.__doc__ = "Take traces, runs and routed calls again." if enabled else "No imports, runs or routed calls."
    return command


def _control(client: Callable[[], Any], action: str) -> Callable[[str], None]:
    def command(domain_name: str) -> None:
        state = client().canary.control(domain_name, action)
        out.print(f"{domain_name}: {action} — stage {state.get('stage')}, {state.get('control')}", markup=False)

    command.__doc__ = f"{action.capitalize()} the canary."
    return command
