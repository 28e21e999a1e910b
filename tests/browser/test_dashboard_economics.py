"""The overview's economics in a real headless Chromium: per domain and day, the teacher's cost of the routed calls,
their actual cost, the saving and the quality, as GET /api/v1/economics gives them."""

from __future__ import annotations

from datetime import timedelta

import httpx

from forge.domain.models import utcnow
from forge.storage.canaries import JudgedPair
from forge.storage.drift import DriftRepository
from tests.factories import make_model_version, make_trace


def api(page, path: str, **params) -> dict:
    return httpx.get(page.server.url + path, params=params, headers={"X-API-Key": page.server.key}, timeout=30).json()


def seed(forge, tenant: str) -> None:
    """Two days of coding calls: students answering (rated), the teacher, a fallback; and judged pairs."""
    version = forge.storage.models.create(make_model_version(tenant, stage="production")).version_id
    teacher = forge.settings.teacher_model
    first = (utcnow() - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    second = first + timedelta(days=1)
    calls = [(first, "production", version, 1200, 300, "approved"),
             (first, "production", version, 800, 700, "approved"),
             (first, "production", version, 1000, 500, "rejected"),
             (first, "teacher", teacher, 900, 400, None),
             (second, "fallback", teacher, 1500, 600, None),
             (second, "production", version, 2000, 900, "approved")]
    forge.storage.traces.add([
        make_trace(tenant, created_at=at + timedelta(minutes=i), source="router", model=model,
                   metadata={"route": route}, prompt_tokens=prompt, completion_tokens=completion, feedback=feedback)
        for i, (at, route, model, prompt, completion, feedback) in enumerate(calls)])
    pairs = DriftRepository(forge.storage.account)  # the student's answers judged against the teacher's
    for i, (at, outcome) in enumerate([(first, "win"), (first, "win"), (first, "loss"), (second, "tie")]):
        pairs.add_pair(JudgedPair(tenant=tenant, domain="coding", candidate=version, trace_id=f"coding.judged{i}",
                                  stage=-1, arm="drift", outcome=outcome, created_at=at + timedelta(minutes=30 + i)))


def usd(value: float) -> str:
    """dom.js `usd`: two decimals, up to four under a dollar."""
    text = f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    while abs(value) < 1 and text.endswith("0") and len(text.split(".")[1]) > 2:
        text = text[:-1]
    return "$" + text


def one_decimal(value: float) -> str:
    """dom.js `num(v, 1)`: at most one decimal, none when it is 0."""
    return f"{value:,.1f}".removesuffix(".0")


def rate(value: float | None, n: int) -> str:
    return "—" if value is None else f"{one_decimal(100 * value)}% of {n}"


def cells(e: dict, label: str) -> list[str]:
    """What the economics table shows for a day (or the total) of the API's report."""
    saving = usd(e["savingUsd"]) + ("" if e["savingPercent"] is None else f" ({one_decimal(e['savingPercent'])}%)")
    return [label, str(e["studentRequests"]),
            str(e["teacherRequests"]) + (f" ({e['fallbacks']} fallback)" if e["fallbacks"] else ""),
            usd(e["teacherCostUsd"]), usd(e["costUsd"]), saving, rate(e["approvalRate"], e["approved"] + e["rejected"]),
            rate(e["winRate"], e["wins"] + e["ties"] + e["losses"])]


def test_the_overview_shows_each_days_teacher_cost_actual_cost_saving_and_quality_as_the_api_gives_them(page):
    seed(page.server.forge, page.server.tenant)
    report = api(page, "/api/v1/economics", domain="coding", days=14)["domains"][0]
    shown = [d for d in report["days"] if d["studentRequests"] or d["teacherRequests"]]
    assert len(shown) == 2 and shown[1]["fallbacks"] == 1 and report["total"]["winRate"] == 0.625

    p = page.page
    page.log_in()
    coding = p.get_by_role("region", name="coding")
    table = coding.get_by_role("table", name="coding: cost, saving and quality per day")
    table.wait_for()
    rows = [row.locator("th, td").all_inner_texts() for row in table.locator("tbody tr").all()]
    assert rows == [cells(d, d["date"]) for d in shown] + [cells(report["total"], "Total")]
    assert rows[0][6] == "66.7% of 3" and rows[-1][5].startswith("$0.0")  # what people would read, spelled out
    saving = coding.locator(".kpi", has_text="Saving vs teacher").locator("b").inner_text()
    assert saving == usd(report["total"]["savingUsd"])
    assert page.unlabelled_controls() == []
    page.shot("economics")
