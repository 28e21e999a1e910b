"""The canary page in a real headless Chromium against a real Forge: a candidate adopted by the canary's control
step is reached from the overview, then a person pins, pauses, resumes and (after confirming) skips its stage, and
the API and the route follow. A domain with no canary answers the controls with the API's 409, in the page."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from forge.domain.models import new_id, utcnow
from forge.services import canary, domains, drift
from tests.factories import make_model_version, make_trace

# Stages no evidence can finish in the test: only a person moves the canary on.
POLICY = {"stages": [{"percent": 0, "min_requests": 10_000, "min_minutes": 0},
                     {"percent": 50, "min_requests": 10_000, "min_minutes": 0},
                     {"percent": 100, "min_requests": 10_000, "min_minutes": 0}]}


def canary_of(forge, tenant: str) -> str:
    """A production student and a candidate on the coding route, adopted by one control step (stage 0, shadow)."""
    domains.edit(forge, tenant, "coding", settings={"canary": POLICY})
    prod = forge.storage.models.create(make_model_version(tenant, provider_model_id="prod", stage="production"))
    cand = forge.storage.models.create(make_model_version(tenant, provider_model_id="cand", stage="candidate"))
    route = forge.storage.routes.get(tenant, "coding").model_copy(update={
        "production_model": prod.version_id, "canary_model": cand.version_id, "canary_percent": 10.0})
    forge.storage.routes.save(route)
    # In a thread of its own: the step runs its replays on asyncio, and Playwright's loop holds this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(canary.step, forge, tenant, "coding", utcnow()).result()
    return cand.version_id


def shown(page, domain: str) -> dict:
    return httpx.get(f"{page.server.url}/api/v1/canary/{domain}", headers={"X-API-Key": page.server.key},
                     timeout=30).json()


def test_a_person_pins_pauses_resumes_and_skips_the_canary_from_its_page(page):
    p, forge, tenant = page.page, page.server.forge, page.server.tenant
    candidate = canary_of(forge, tenant)
    assert forge.storage.routes.get(tenant, "coding").canary_percent == 0.0

    page.log_in()
    p.get_by_role("link", name="Canary of coding").click()
    p.get_by_role("heading", name="Canary · coding").wait_for()
    p.locator(".canary-stage", has_text="0 (shadow, 0%)").wait_for()
    assert p.locator(".canary-candidate").inner_text() == candidate[-8:]
    assert p.locator(".canary-status").inner_text() == "active"
    assert p.get_by_role("table", name="Decision history").locator("tbody tr").count() == 2  # start, hold
    assert page.unlabelled_controls() == []
    page.shot("canary")

    for button, control in (("Pin", "pinned"), ("Pause", "paused"), ("Resume", "auto")):
        p.get_by_role("button", name=button, exact=True).click()
        p.locator(".canary-control", has_text=control).wait_for()
        assert shown(page, "coding")["state"]["control"] == control

    p.get_by_role("button", name="Skip stage").click()
    p.get_by_text("Skip stage 0 (shadow, 0%) and move the candidate to stage 1 (50%) now?").wait_for()
    p.get_by_role("button", name="Cancel").click()  # thought better of it: nothing changes
    p.get_by_role("button", name="Skip stage").click()
    p.get_by_role("button", name="Confirm skip").click()
    p.locator(".canary-stage", has_text="1 (50%)").wait_for()
    assert shown(page, "coding")["state"]["stage"] == 1
    assert forge.storage.routes.get(tenant, "coding").canary_percent == 50.0
    assert p.get_by_role("table", name="Decision history").locator("tbody tr").first.inner_text().count("advance") == 1
    page.shot("canary-skipped")


def test_the_controls_of_a_domain_without_a_canary_show_why_in_the_page(page):
    p = page.page
    page.log_in()
    p.get_by_role("link", name="Domains").click()
    p.get_by_role("link", name="Canary of demo").click()
    p.locator(".canary-status", has_text="idle").wait_for()
    p.get_by_role("button", name="Pin", exact=True).click()
    p.get_by_role("alert").filter(has_text="No canary is running for demo").wait_for()
    assert shown(page, "demo")["state"]["control"] == "auto"
    # Chromium logs every refused request to the console; this one was expected, and is the only one.
    assert page.console_errors == ["Failed to load resource: the server responded with a status of 409 (Conflict)"]
    page.console_errors.clear()


def drifting(forge, tenant: str) -> str:
    """An education student trained on English questions, then 12 calls in Spanish it answered; one drift check."""
    domains.edit(forge, tenant, "education", settings={"drift": {"min_requests": 10, "judge_share": 0}})
    dataset_id = new_id()
    forge.storage.datasets.write_file(tenant, dataset_id, "train", (
        {"messages": [{"role": "user", "content": f"How do I reset the password of account {i}?"},
                      {"role": "assistant", "content": "Open settings."}]} for i in range(50)))
    model = forge.storage.models.create(make_model_version(tenant, "education", provider_model_id="sup",
                                                           stage="production", dataset_id=dataset_id))
    forge.storage.routes.save(forge.storage.routes.get(tenant, "education").model_copy(
        update={"production_model": model.version_id}))
    forge.storage.traces.add(make_trace(
        tenant, "education", source="router", model=model.version_id, metadata={"route": "production"},
        messages=[{"role": "user", "content": f"Hola, ¿cómo cambio la contraseña de la cuenta {i}? No puedo entrar."}],
        response={"role": "assistant", "content": "Abra la configuración."}) for i in range(12))
    with ThreadPoolExecutor(1) as pool:
        pool.submit(drift.step, forge, tenant, "education", utcnow()).result()
    return model.version_id


def test_a_drift_alert_on_the_overview_leads_to_the_students_drift_and_its_numbers(page):
    p, forge, tenant = page.page, page.server.forge, page.server.tenant
    drifting(forge, tenant)
    page.log_in()
    alert = p.locator(".alert", has_text="Drift · education")  # the overview's alerts name it, and lead to it
    alert.filter(has_text="language: the mix moved").wait_for()
    alert.get_by_role("link", name="drift of education").click()
    panel = p.get_by_role("region", name="Drift of the production student")
    panel.locator(".drift-alerts li", has_text="language: the mix moved").wait_for()
    assert panel.locator(".drift-languages").inner_text() == "es 100%"
    assert panel.locator(".drift-fallbacks").inner_text() == "0.0%"
    rows = p.get_by_role("table", name="Drift checks").locator("tbody tr")
    assert rows.count() == 1 and "language" in rows.first.inner_text()
    page.shot("drift")
