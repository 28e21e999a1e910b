"""Forge's own Azurite: started on demand under FORGE_HOME, reused, and stopped only if Forge started it."""

import os

import pytest

from forge.bootstrap import bootstrap
from forge.config import load_settings
from forge.storage.azurite import AzuriteUnavailable, ManagedAzurite, find_node_modules
from tests.factories import make_trace


def test_forge_starts_azurite_when_no_storage_is_configured_reuses_it_and_stops_it(tmp_path):
    settings = load_settings(home=tmp_path / "home")
    manager = ManagedAzurite(settings.home)
    try:
        first = bootstrap(settings)
        assert first.azurite is not None and (settings.home / "azurite" / "data").is_dir()
        first.storage.traces.add([make_trace("local")])
        second = bootstrap(settings)
        assert second.azurite.pid == first.azurite.pid
        assert second.storage.traces.list("local").items  # the same emulator, the same data
    finally:
        assert manager.stop() is True
    with pytest.raises(ProcessLookupError):
        os.kill(first.azurite.pid, 0)
    assert manager.stop() is False


def test_a_missing_azurite_says_to_run_make_setup(tmp_path):
    with pytest.raises(AzuriteUnavailable, match="make setup"):
        find_node_modules(tmp_path / "empty", search_from=[tmp_path])
