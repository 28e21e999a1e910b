"""`make screenshots`: the README's dashboard pictures, from a real cycle — two weeks of seeded demo traffic, a run
on the local provider, the student promoted and answering through the router — in a temporary FORGE_HOME.

    .venv/bin/python -m tests.browser.screenshots [--out docs]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from forge.cli.demo import HYPERPARAMETERS, ROUTER_PROMPT
from forge.demo.seed import SYSTEM
from forge.storage.azurite import find_node_modules, start, stop_pid
from tests.browser.harness import launch, running_forge

SIZE = {"width": 1280, "height": 860}


def run_cycle(url: str, key: str) -> str:
    """Trigger a run as the wizard would, wait for it, make sure its student serves, send it some requests."""
    client = httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=300)
    settings = {"trigger_threshold": 10, "poll_interval_s": 1, "hyperparameters": {**HYPERPARAMETERS, "eval_every": 20}}
    job_id = client.post("/api/v1/forge/jobs/trigger", json={"domain": "demo", "provider": "local",
                                                             "settings": settings}).json()["jobId"]
    while (job := client.get(f"/api/v1/forge/jobs/{job_id}").json())["status"] not in (
            "COMPLETED", "FAILED", "SKIPPED", "CANCELLED"):
        time.sleep(1)
    if job["status"] != "COMPLETED":
        raise SystemExit(f"the run ended {job['status']}: {job.get('error') or job.get('reason')}")
    model = job["resultingModelId"]
    if client.get(f"/api/v1/models/{model}").json()["stage"] != "production":
        client.post(f"/api/v1/models/{model}/promote", json={"stage": "production"}).raise_for_status()
    for _ in range(12):
        client.post("/v1/chat/completions", json={"model": "forge:demo", "max_tokens": 60, "messages": [
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": ROUTER_PROMPT}]}).raise_for_status()
    return job_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[2] / "docs")
    out = parser.parse_args().out
    with tempfile.TemporaryDirectory(prefix="forge-shots-") as scratch:
        azurite = start(find_node_modules(), data_dir=None, log_path=Path(scratch) / "azurite.log", detach=False)
        try:
            with running_forge(azurite.connection_string, Path(scratch) / "home", "acme", traffic=400,
                               days=14) as forge:
                job_id = run_cycle(forge.url, forge.key)
                with sync_playwright() as playwright:
                    browser = launch(playwright)
                    page = browser.new_page(viewport=SIZE, base_url=forge.url)
                    page.goto("/")
                    page.get_by_label("API key").fill(forge.key)
                    page.get_by_role("button", name="Log in").click()
                    page.get_by_role("region", name="demo").get_by_role("img").first.wait_for()
                    page.screenshot(path=str(out / "dashboard-overview.png"), full_page=True)
                    page.goto(f"/#/jobs/{job_id}")
                    page.locator('path[data-series="train"]').wait_for()
                    page.screenshot(path=str(out / "dashboard-job.png"), full_page=True)
                    browser.close()
        finally:
            stop_pid(azurite.pid)
    print(f"wrote {out / 'dashboard-overview.png'} and {out / 'dashboard-job.png'}")


if __name__ == "__main__":
    main()
