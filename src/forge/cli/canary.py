"""`forge canary show|report|pin|pause|resume|skip DOMAIN`: a domain's canary, its shadow report per stage, and a
person's say over it."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from forge.cli.common import forge, out
from forge.domain import ids
from forge.services import canary

app = typer.Typer(help="A domain's canary: its stage and decisions, the shadow report per stage; pin, pause, "
                       "resume or skip a stage.", no_args_is_help=True)

CANDIDATE = typer.Option(None, "--candidate", help="An earlier candidate's version id (rolled back or promoted); "
                                                   "default: the current one.")


def _report(domain: str, tenant: str | None, candidate: str | None) -> dict[str, Any]:
    f = forge()
    return canary.report(f, tenant or f.settings.tenant, domain, ids.MODEL.check(candidate) if candidate else None)


@app.command("show")
def show(domain: str, tenant: str = typer.Option(None, help="Default: FORGE_TENANT."),
         candidate: Optional[str] = CANDIDATE, as_json: bool = typer.Option(False, "--json")) -> None:
    """The canary's state and its candidate's recent decisions with their numbers."""
    found = _report(domain, tenant, candidate)
    if as_json:
        out.print_json(json.dumps(found))
        return
    state = found["state"]
    out.print(f"{domain}: {state['status']} — candidate {state['candidate'] or '-'} at stage {state['stage']} "
              f"({state['control']})", markup=False)
    if found["candidate"] and not found["current"]:
        out.print(f"earlier candidate {found['candidate']}:", markup=False)
    for d in found["decisions"][-10:]:
        n = d.get("numbers") or {}
        rate = f" win rate {n['winRate']} [{n['winRateLower']}, {n['winRateUpper']}] on {n['judged']}" \
            if n.get("winRate") is not None else ""
        out.print(f"  {d['at'][:19]} {d['action']:<8} stage {d['stage']}{rate}: {'; '.join(d.get('reasons') or [])}",
                  markup=False)


@app.command("report")
def report(domain: str, tenant: str = typer.Option(None, help="Default: FORGE_TENANT."),
           candidate: Optional[str] = CANDIDATE, as_json: bool = typer.Option(False, "--json")) -> None:
    """The shadow report per stage: judged pairs, wins/ties/losses, the win rate with its bounds, similarity, and
    the candidate's and production's p95 latency and cost per request."""
    found = _report(domain, tenant, candidate)
    if as_json:
        out.print_json(json.dumps(found["judged"]))
    else:
        print_stages(domain, found)


def print_stages(domain: str, found: dict[str, Any]) -> None:
    """The report's stages as a table (also the remote `forge canary report`'s)."""
    out.print(f"{domain}: candidate {found['candidate'] or '-'}"
              f"{'' if found['current'] or not found['candidate'] else ' (earlier)'}", markup=False)
    if not found["judged"]:
        out.print("  nothing judged or measured yet", markup=False)
        return
    out.print(f"  {'stage':<9} {'judged':>6} {'W/T/L':>11} {'win rate [bounds]':>24} {'sim':>6} "
              f"{'p95 ms cand/prod':>19} {'$/request cand/prod':>25}", markup=False)
    for row in found["judged"]:
        rate = row["winRate"]
        bounds = f"{rate['mean']:.3f} [{rate['lower']:.3f}, {rate['upper']:.3f}]" if rate else "-"
        cand, prod = row["candidate"], row["production"]
        stage = f"{row['stage']} ({_num(row['percent'], 'g')}%)"
        out.print(f"  {stage:<9} {row['judged']:>6} {row['wins']:>3}/{row['ties']:>3}/{row['losses']:>3} {bounds:>24} "
                  f"{_num(row['meanSimilarity'], '.1f'):>6} "
                  f"{_num(cand['p95LatencyMs'], 'g') + '/' + _num(prod['p95LatencyMs'], 'g'):>19} "
                  f"{_num(cand['costPerRequestUsd'], '.6f') + '/' + _num(prod['costPerRequestUsd'], '.6f'):>25}",
                  markup=False)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _control(action: str):
    def command(domain: str, tenant: str = typer.Option(None, help="Default: FORGE_TENANT.")) -> None:
        f = forge()
        state = canary.control(f, tenant or f.settings.tenant, domain, action, by="the CLI")  # type: ignore[arg-type]
        out.print(f"{domain}: {action} — stage {state.stage}, {state.control}, {state.status}")

    command.__doc__ = {"pin": "Hold the current stage (roll-backs still happen).", "pause": "Decide nothing.",
                       "resume": "Decide automatically again.", "skip": "Advance to the next stage now."}[action]
    return command


for _action in ("pin", "pause", "resume", "skip"):
    app.command(_action)(_control(_action))
