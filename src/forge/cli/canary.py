"""`forge canary show|pin|pause|resume|skip DOMAIN`: a domain's canary and a person's say over it."""

from __future__ import annotations

import json

import typer

from forge.cli.common import forge, out
from forge.services import canary

app = typer.Typer(help="A domain's canary: its stage and decisions; pin, pause, resume or skip a stage.",
                  no_args_is_help=True)


@app.command("show")
def show(domain: str, tenant: str = typer.Option(None, help="Default: FORGE_TENANT."),
         as_json: bool = typer.Option(False, "--json")) -> None:
    f = forge()
    found = canary.report(f, tenant or f.settings.tenant, domain)
    if as_json:
        out.print_json(json.dumps(found))
        return
    state = found["state"]
    out.print(f"{domain}: {state['status']} — candidate {state['candidate'] or '-'} at stage {state['stage']} "
              f"({state['control']})")
    for d in state["decisions"][-10:]:
        n = d.get("numbers") or {}
        rate = f" win rate {n['winRate']} [{n['winRateLower']}, {n['winRateUpper']}] on {n['judged']}" \
            if n.get("winRate") is not None else ""
        out.print(f"  {d['at'][:19]} {d['action']:<8} stage {d['stage']}{rate}: {'; '.join(d.get('reasons') or [])}")


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
