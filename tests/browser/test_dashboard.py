"""The dashboard in a real headless Chromium against a real Forge: log in, review traces by keyboard, upload a
dataset and read its errors by line, start a run and watch its loss curve grow, open the evaluation and promote.
Every test also checks (in conftest) that the page logged no console error and requested nothing but Forge."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.browser.harness import RUN_HYPERPARAMETERS
from tests.factories import varied_lines

# What the wizard is given: the run's hyperparameters, its threshold and a quick poll, so the chart moves.
RUN = {**RUN_HYPERPARAMETERS, "trigger_threshold": 10, "poll_interval_s": 0.5}


def api(page, path: str, **params) -> dict:
    return httpx.get(page.server.url + path, params=params, headers={"X-API-Key": page.server.key}, timeout=30).json()


def test_logging_in_shows_the_overview_per_domain_and_logging_out_ends_the_session(page):
    p = page.page
    page.log_in()
    demo = p.get_by_role("region", name="demo")
    demo.get_by_role("img", name="demo: traces and golden traces per day").wait_for()
    assert demo.locator("rect.s-golden").count() >= 1
    assert page.unlabelled_controls() == []
    page.shot("overview")

    p.set_viewport_size({"width": 390, "height": 844})  # a phone: one column, the menu behind a button
    p.get_by_role("button", name="Menu").click()
    p.get_by_role("link", name="Jobs").click()
    p.get_by_role("heading", name="Jobs").wait_for()
    assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.shot("phone-jobs")
    p.set_viewport_size({"width": 1366, "height": 900})

    cookie = next(c for c in p.context.cookies() if c["name"] == "forge_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and page.server.key not in cookie["value"]
    p.get_by_role("button", name="Log out").click()
    p.get_by_role("heading", name="Log in to Forge").wait_for()
    p.reload()
    p.get_by_role("heading", name="Log in to Forge").wait_for()  # the session is gone, not only the page


def test_a_trace_is_approved_and_the_next_scored_with_the_keyboard(page):
    p = page.page
    page.log_in()
    p.goto(page.server.url + "/#/traces?domain=demo&feedback=none")
    rows = p.locator(".trace-list tr[data-id]")
    rows.first.wait_for()
    first, second = rows.nth(0).get_attribute("data-id"), rows.nth(1).get_attribute("data-id")
    reading = lambda trace_id: p.get_by_role("heading", name=f"Trace {trace_id[-8:]}")  # noqa: E731
    reading(first).wait_for()  # the newest unreviewed trace is open
    p.keyboard.press("j")
    reading(second).wait_for()
    p.keyboard.press("k")
    reading(first).wait_for()
    p.keyboard.press("a")
    reading(second).wait_for()  # approving moves on to the next
    p.keyboard.press("7")
    p.locator(".trace-score", has_text="score 70").wait_for()
    page.shot("reviewed")
    traces = {t["id"]: t for t in api(page, "/api/v1/traces", domain="demo", limit=1000)["items"]}
    assert traces[first]["feedback"] == "approved" and traces[second]["score"] == 70
    assert page.unlabelled_controls() == []


def test_a_dropped_dataset_shows_each_bad_line_then_uploads_and_keeps_them(page):
    p = page.page
    page.log_in()
    p.get_by_role("link", name="Datasets").click()
    p.get_by_role("heading", name="Upload").wait_for()
    p.get_by_label("Domain").select_option("coding")
    text = "\n".join(varied_lines(12, score=None)) + "\n{not json\n" + json.dumps({"messages": []}) + "\n"
    # A real drop: a DataTransfer holding a File, dispatched on the drop zone as the browser would.
    p.locator(".dropzone").evaluate("""(zone, text) => {
        const data = new DataTransfer();
        data.items.add(new File([text], "support.jsonl", {type: "application/x-ndjson"}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    }""", text)
    report = p.get_by_role("region", name="Check of support.jsonl")
    report.wait_for()
    lines = report.locator("tr.reject")
    assert lines.count() == 2
    assert lines.nth(0).inner_text().split("\t")[:2] == ["13", "invalid_json"]
    assert lines.nth(1).inner_text().startswith("14")
    page.shot("checked")
    report.get_by_role("button", name="Upload 12 examples").click()
    p.get_by_role("heading", name=re.compile(r"Dataset v\d+ · coding")).wait_for()
    p.get_by_role("table", name="Dropped lines").wait_for()
    assert p.locator("tr.reject").count() == 2
    p.get_by_role("table", name="Cost estimate per base model").get_by_text("gpt-4.1-mini-2025-04-14").wait_for()
    page.shot("dataset")


@pytest.mark.timeout(600)  # a whole run: seconds on an idle machine, minutes on a loaded 2-core one
def test_a_run_started_in_the_wizard_shows_its_loss_curve_growing_then_its_evaluation_promotes_the_student(page):
    p = page.page
    page.log_in()
    p.get_by_role("link", name="Jobs").click()
    p.get_by_role("link", name="New run").click()
    p.get_by_label("Domain").select_option("demo")
    p.get_by_role("button", name="Next").click()
    p.get_by_label("Provider").select_option("local")
    p.get_by_role("button", name="Next").click()
    for name, value in RUN.items():
        p.locator(f"#w-{name}").fill(str(value))
    assert page.unlabelled_controls() == []
    p.get_by_role("button", name="Next").click()
    review = json.loads(p.locator("pre.review").inner_text())
    assert review["provider"] == "local" and review["settings"]["hyperparameters"]["n_epochs"] == RUN["n_epochs"]
    p.locator(".estimate").wait_for()  # the cost estimate, from the domain's traces
    page.shot("review")
    p.get_by_role("button", name="Start run").click()
    p.get_by_role("heading", name=re.compile(r"Job \w+ · demo")).wait_for()

    train = p.locator('path[data-series="train"]')
    train.wait_for(timeout=120_000)
    first = int(train.get_attribute("data-points"))
    p.wait_for_function(f"""() => Number(document.querySelector('path[data-series="train"]')
        ?.getAttribute('data-points')) > {first}""", timeout=120_000)  # it grows without a reload
    page.shot("training")
    p.get_by_role("link", name="Open the evaluation").wait_for(timeout=240_000)
    p.wait_for_function("() => document.querySelector('.job-status')?.textContent === 'COMPLETED'", timeout=60_000)
    assert int(train.get_attribute("data-points")) > first
    assert p.locator('path[data-series="valid"]').count() == 1
    page.shot("job")

    p.get_by_role("link", name="Open the evaluation").click()
    gates = p.get_by_role("table", name="Gates (as the domain sets them now)")
    gates.wait_for()
    assert gates.locator("tr").count() >= 3 and p.locator("ul.reasons li").count() >= 2
    page.shot("evaluation")
    if p.get_by_role("button", name="Roll back").count():  # the gates passed it: it serves already; start over
        p.get_by_role("button", name="Roll back").click()
        p.get_by_role("button", name="Promote to canary").wait_for()
    p.get_by_label("Canary %").fill("25")
    p.get_by_role("button", name="Promote to canary").click()
    p.locator(".role", has_text="role: canary 25%").wait_for()
    p.get_by_role("button", name="Promote to production").click()
    p.locator(".role", has_text="role: production").wait_for()
    model_id = p.url.rsplit("/", 1)[1]
    assert api(page, f"/api/v1/models/{model_id}")["stage"] == "production"
    page.shot("promoted")
