"""Browser fixtures: one Forge and one Chromium per module; per test a fresh page whose console errors and
requests are collected, checked when the test ends, and a screenshot folder under test-output/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from tests.browser.harness import Running, chromium_path, launch, running_forge
from tests.factories import unique_name

SHOTS = Path(__file__).parents[2] / "test-output" / "browser"

# `make setup` installs both; without them these tests fail saying how, rather than passing by being skipped.
if chromium_path() is None:
    pytest.fail("Chromium is missing: `apt-get install -y chromium` (make setup does it as root)", pytrace=False)
try:
    from playwright import sync_api
except ImportError:
    pytest.fail("playwright is missing: `make setup` installs it (the dev extras)", pytrace=False)


@pytest.fixture(scope="module")
def forge_server(azurite, tmp_path_factory) -> Iterator[Running]:
    with running_forge(azurite.connection_string, tmp_path_factory.mktemp("dashboard") / "home",
                       unique_name("dash")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


class Page:
    """A page on Forge, with what it logged and requested, and screenshots by name."""

    def __init__(self, page, server: Running, test: str):
        self.page, self.server, self.test = page, server, test
        self.console_errors: list[str] = []
        self.hosts: set[str] = set()
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        page.on("request", lambda r: self.hosts.add(urlsplit(r.url).netloc))

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.test}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def log_in(self) -> None:
        self.page.goto(self.server.url + "/")
        self.page.get_by_label("API key").fill(self.server.key)
        self.page.get_by_role("button", name="Log in").click()
        self.page.get_by_role("heading", name="Overview").wait_for()

    def unlabelled_controls(self) -> list[str]:
        """Form controls a screen reader could not name."""
        return self.page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(e => e.type !== 'hidden' && e.offsetParent !== null)
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
            .map(e => e.outerHTML.slice(0, 80))""")


@pytest.fixture
def page(browser, forge_server, request) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=forge_server.url)
    context.set_default_timeout(20_000)
    wrapped = Page(context.new_page(), forge_server, request.node.name.removeprefix("test_")[:60])
    try:
        yield wrapped
    finally:
        context.close()
    assert wrapped.console_errors == [], f"the page logged errors: {wrapped.console_errors}"
    assert wrapped.hosts == {urlsplit(forge_server.url).netloc}, f"requests left Forge: {wrapped.hosts}"
