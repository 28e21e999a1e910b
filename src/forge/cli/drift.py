"""`forge drift show|check DOMAIN`: how a domain's traffic moved away from its production student's training set."""

from __future__ import annotations

import json
from typing import Any

import typer

from forge.cli.common import forge, out
from forge.domain.models import utcnow
from forge.services import drift

app = typer.Typer(help="A domain's drift: fallbacks, judged quality and input shifts against its training set.",
                  no_args_is_help=True)


@app.command("show")
def show(domain: str, tenant: str = typer.Option(None, help="Default: FORGE_TENANT."),
         days: float = typer.Option(7, min=0.001, max=90, help="How far back."),
         as_json: bool = typer.Option(False, "--json")) -> None:
    """The domain's checks over the last days, and their alerts."""
    f = forge()
    found = drift.history(f, tenant or f.settings.tenant, domain, days=days, now=utcnow())
    if as_json:
        out.print_json(json.dumps(found))
        return
    if not found["checks"]:
        out.print(f"{domain}: no drift checks yet (the control loop under `forge worker` runs them every "
                  f"{found['policy']['check_minutes']:g} min; `forge drift check {domain}` runs one now)", markup=False)
    for check in found["checks"][-20:]:
        out.print(line(check), markup=False)


@app.command("check")
def check(domain: str, tenant: str = typer.Option(None, help="Default: FORGE_TENANT.")) -> None:
    """Check the current window now (once per window, as the control loop does)."""
    f = forge()
    tenant = tenant or f.settings.tenant
    done = drift.step(f, tenant, domain, utcnow())
    latest = drift.history(f, tenant, domain, days=1, now=utcnow())["latest"]
    out.print(line(latest) if latest else f"{domain}: {done['action']}", markup=False)


def line(check: dict[str, Any]) -> str:
    m = check.get("measures") or {}
    rate = m.get("win_rate") or {}
    parts = [f"{check['at'][:16]} {check.get('model') or '-'}",
             f"calls {m.get('requests', 0)}", f"fallbacks {_pct(m.get('fallback_share'))}",
             f"win rate {rate.get('mean', '-') if rate else '-'} on {m.get('judged', 0)}",
             f"length shift {_pct(m.get('length_shift'))}", f"language shift {m.get('language_shift', '-')}",
             f"new phrases {_pct(m.get('ngram_novelty'))}"]
    said = "; ".join(check.get("alerts") or []) or check.get("note") or "ok"
    run = f" → run {check['run_job']}" if check.get("run_job") else ""
    return "  ".join(parts) + f"\n    {said}{run}"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"
