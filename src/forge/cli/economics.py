"""`forge economics`: per domain and day, what the routed traffic would have cost on the teacher, what it cost, the
saving and the quality; and the one-line window `forge status` shows under each domain. The printers read the API's
camelCase report, so the local and the remote commands print the same."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from forge.cli.common import forge, out
from forge.services import economics as service

STATUS_DAYS = 7
HEADER = (f"  {'date':<10} {'student':>7} {'teacher':>7} {'fallback':>8} {'teacher cost':>12} {'actual cost':>12} "
          f"{'saving':>11} {'saving %':>8}  {'approval':<13} {'win rate':<13}")


def economics(
    domain: Optional[str] = typer.Option(None, help="Only this domain (default: every domain)."),
    days: int = typer.Option(14, min=1, max=service.MAX_DAYS, help="Days (UTC) up to today."),
    tenant: Optional[str] = typer.Option(None),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON (the API's shape)."),
) -> None:
    """Per domain and day: the teacher's cost of the routed traffic, its actual cost, the saving, the quality."""
    f = forge()
    found = service.report(f, tenant or f.settings.tenant, domain=domain, days=days)
    print_report(found.model_dump(mode="json", by_alias=True), as_json=as_json)


def print_report(report: dict[str, Any], *, as_json: bool = False) -> None:
    if as_json:
        out.print(json.dumps(report, indent=2), markup=False)
        return
    prices = report["prices"]
    lora = prices.get("loraCostPerHour")
    out.print(f"Since {report['since']} ({report['days']} days, UTC). Teacher {prices['teacherInput']:g}/"
              f"{prices['teacherOutput']:g}, student {prices['studentInput']:g}/{prices['studentOutput']:g} USD per "
              "1M input/output tokens" + (f"; LoRA server {usd(lora)} an hour" if lora is not None else ""),
              markup=False)
    for item in report["domains"]:
        total = item["total"]
        if not _any(total):
            out.print(f"{item['domain']}: no routed calls or judged pairs", markup=False)
            continue
        out.print(item["domain"], markup=False)
        out.print(HEADER, markup=False)
        for row in [*item["days"], {**total, "date": "total"}]:
            out.print(_row(row), markup=False)
    out.print(f"All domains: {window(report['total'])}", markup=False)


def window(e: dict[str, Any]) -> str:
    """A window in one line: teacher cost, actual cost, saving, and the quality where any was measured."""
    if not _any(e):
        return "no routed calls"
    line = (f"teacher {usd(e['teacherCostUsd'])}, actual {usd(e['costUsd'])}, saved {usd(e['savingUsd'])} "
            f"({_percent(e['savingPercent'])}) on {e['studentRequests']} student and {e['teacherRequests']} teacher "
            f"calls; approval {_rate(e['approvalRate'], e['approved'] + e['rejected'], 'rated')}")
    judged = e["wins"] + e["ties"] + e["losses"]
    return line + (f", win rate vs the teacher {_rate(e['winRate'], judged, 'judged')}" if judged else "")


def usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.4f}"


def _row(e: dict[str, Any]) -> str:
    judged = e["wins"] + e["ties"] + e["losses"]
    return (f"  {e['date']:<10} {e['studentRequests']:>7} {e['teacherRequests']:>7} {e['fallbacks']:>8} "
            f"{usd(e['teacherCostUsd']):>12} {usd(e['costUsd']):>12} {usd(e['savingUsd']):>11} "
            f"{_percent(e['savingPercent']):>8}  {_rate(e['approvalRate'], e['approved'] + e['rejected']):<13} "
            f"{_rate(e['winRate'], judged):<13}")


def _any(e: dict[str, Any]) -> bool:
    return bool(e["studentRequests"] or e["teacherRequests"] or e["wins"] + e["ties"] + e["losses"])


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:g}%"


def _rate(value: float | None, n: int, what: str = "") -> str:
    if value is None:
        return f"none {what}".strip() if what else "-"
    return f"{100 * value:.1f}% of {n}" + (f" {what}" if what else "")
