"""Shared fixtures: one in-memory Azurite per test session, a fresh tenant per test, a temp FORGE_HOME."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from forge.config import Settings, load_settings
from forge.storage import Storage, StorageAccount
from forge.storage.azurite import AzuriteInstance, find_node_modules, start, stop_pid
from tests.factories import unique_name


@pytest.fixture(autouse=True)
def _forge_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's ~/.forge or their FORGE_* variables."""
    for key in list(os.environ):
        if key.startswith("FORGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FORGE_HOME", str(tmp_path / "forge-home"))
    # Students answer in-process unless a test wires a LoRA server (tests/integration/test_vllm_lora.py,
    # test_embedded_lora.py) or runs `forge` as a user does (tests/e2e): converting every test's tiny model to
    # GGUF and starting llama.cpp for it would cost the suite minutes and test nothing new.
    monkeypatch.setenv("FORGE_LORA_SERVER", "transformers")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteInstance]:
    log = tmp_path_factory.mktemp("azurite") / "azurite.log"
    instance = start(find_node_modules(), data_dir=None, log_path=log, detach=False)
    try:
        yield instance
    finally:
        stop_pid(instance.pid)


@pytest.fixture(scope="session")
def storage(azurite: AzuriteInstance) -> Storage:
    return Storage.open(StorageAccount.from_connection_string(azurite.connection_string))


@pytest.fixture
def tenant() -> str:
    return unique_name("t")


@pytest.fixture
def settings(azurite: AzuriteInstance, tmp_path: Path) -> Settings:
    return load_settings(storage_connection=azurite.connection_string, home=tmp_path / "forge-home")


@pytest.fixture
def forge_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, azurite: AzuriteInstance,
              tenant: str) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """Run `forge …` in-process against the session's Azurite as `tenant`: `forge_cli(*args)` gives (exit code,
    stdout, stderr). Set more FORGE_* variables with monkeypatch before calling; each call reads them afresh."""
    from forge.cli import common
    from forge.cli.main import main

    monkeypatch.setenv("FORGE_STORAGE_CONNECTION", azurite.connection_string)
    monkeypatch.setenv("FORGE_TENANT", tenant)

    def run(*args: str) -> tuple[int, str, str]:
        common.reset()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    common.reset()


# --- The API, shared by the API tests: a wired Forge, the app served on 127.0.0.1, keys per tenant ------------------


@pytest.fixture
def forge(settings: Settings, storage: Storage):
    """Forge wired over the session's Azurite (a test module may override it with other settings or fakes)."""
    from forge.bootstrap import bootstrap

    return bootstrap(settings, storage=storage)


@pytest.fixture
def key(forge, tenant: str) -> str:
    """A read/write API key of `tenant`."""
    return forge.storage.keys.create(tenant, "test")[0]


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


@pytest.fixture
def api(forge):
    """An HTTP client on the API (no engine attached), sending no key unless a test adds one."""
    import httpx

    from forge.api.app import create_app
    from forge.api.server import serving

    with serving(create_app(forge)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.fixture
def keyed_api(api, key: str):
    """The same client, sending `tenant`'s key on every request."""
    api.headers["X-API-Key"] = key
    return api


@pytest.fixture
def engine_api(forge, key: str):
    """An HTTP client, with `tenant`'s key, on the API with a local engine running the real stages."""
    import httpx

    from forge.api.app import create_app
    from forge.api.server import serving
    from forge.workflow.activities import build_activities
    from forge.workflow.local import EngineClient, LocalEngine, LocalOrchestrations

    with LocalEngine(build_activities(forge)) as engine:
        app = create_app(forge, orchestrations=LocalOrchestrations(EngineClient(engine.client)))
        with serving(app) as url, httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": key}) as client:
            yield client
