"""`forge traces`: import, list, feedback, score."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer

from forge.cli.common import err, forge, out
from forge.services import domains
from forge.services import traces as service

app = typer.Typer(help="Traces: import them, list them, say which are good.", no_args_is_help=True)


@app.command("import")
def import_(
    file: Path = typer.Argument(..., help="JSONL file ('-' for stdin): OpenAI chat lines or prompt/response pairs."),
    domain: Optional[str] = typer.Option(None, help="Domain for lines that name none (default: the active one)."),
    tenant: Optional[str] = typer.Option(None, help="Tenant (default: FORGE_TENANT)."),
    rejects: Optional[Path] = typer.Option(None, help="Also write every rejected line number and reason here (JSONL)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary, not each rejected line."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted import of this file after its "
                                "last committed batch instead of reading it from the start."),
) -> None:
    """Import traces, streaming: bad lines are reported with their line number and skipped."""
    f = forge()
    if str(file) != "-" and not file.is_file():
        err.print(f"No file {file}; give the path of a JSONL file, or '-' to read stdin.")
        raise typer.Exit(2)
    source = nullcontext(sys.stdin.buffer) if str(file) == "-" else open(file, "rb")
    sink = open(rejects, "w", encoding="utf-8") if rejects else nullcontext(None)
    with source as stream, sink as reject_file:

        def report(reject: service.Reject) -> None:
            if not quiet:
                err.print(f"line {reject.line}: {reject.reason}: {reject.detail}", markup=False)
            if reject_file is not None:
                reject_file.write(json.dumps({"line": reject.line, "reason": reject.reason, "detail": reject.detail}) + "\n")

        tenant, domain = tenant or f.settings.tenant, domain or f.settings.domain
        summary = service.import_jsonl(f.storage, stream, tenant=tenant, domain=domain,
                                       known_domains=domains.known(f, tenant, domain), on_reject=report,
                                       resume=resume)
    if summary.already:  # the same file (by its sha256) was imported before: nothing is stored twice
        skipped = f"; resumed after line {summary.resumed_after:,}" if summary.resumed_after else ""
        out.print(f"{summary.imported:,} new, {summary.already:,} already imported, from {summary.lines:,} lines"
                  f"{skipped}; rejected {summary.rejected_total}.", markup=False)
    else:
        out.print(f"Imported {summary.imported} traces from {summary.lines} lines; rejected {summary.rejected_total}.")
    for reason, count in summary.rejected.most_common():
        out.print(f"  {reason}: {count}")


@app.command("list")
def list_(
    domain: Optional[str] = typer.Option(None),
    tenant: Optional[str] = typer.Option(None),
    limit: int = typer.Option(20, min=1, max=1000),
    continuation: Optional[str] = typer.Option(None, help="Token printed by the previous page."),
    as_json: bool = typer.Option(False, "--json", help="One JSON trace per line."),
) -> None:
    """List traces, oldest first."""
    f = forge()
    page = f.storage.traces.list(tenant or f.settings.tenant, domain=domain, limit=limit, continuation=continuation)
    for trace in page.items:
        if as_json:
            out.print(json.dumps(trace.public(), ensure_ascii=False), markup=False)
            continue
        prompt = next((m.get("content") for m in reversed(trace.messages) if m.get("role") == "user"), "") or ""
        verdict = trace.feedback or ("-" if trace.score is None else f"{trace.score:g}")
        out.print(f"{trace.id}  {trace.created_at:%Y-%m-%d %H:%M}  {verdict:>8}  {str(prompt)[:60]!r}", markup=False)
    if page.continuation:
        out.print(f"more: --continuation {page.continuation}", markup=False)


@app.command("feedback")
def feedback(
    trace_id: str,
    verdict: str = typer.Argument(..., help="approved or rejected"),
    tenant: Optional[str] = typer.Option(None),
) -> None:
    """Mark a trace approved (golden) or rejected (never trained on)."""
    f = forge()
    trace = service.judge(f.storage, tenant or f.settings.tenant, trace_id, feedback=verdict)
    out.print(f"{trace.id}: feedback {trace.feedback}")


@app.command("score")
def score(trace_id: str, value: float = typer.Argument(..., help="0 to 100"), tenant: Optional[str] = typer.Option(None)) -> None:
    """Set a trace's score; at least FORGE_MIN_SCORE makes it golden."""
    f = forge()
    trace = service.judge(f.storage, tenant or f.settings.tenant, trace_id, score=value)
    out.print(f"{trace.id}: score {trace.score:g}")
