"""The remote CLI keeps up with the local one: every command works remotely or says why it cannot
(tests/integration/test_client.py holds the SDK to the API's operations)."""

from __future__ import annotations

import re

import typer.main

from forge.api.schemas import CURSOR_PATTERN
from forge.storage.tables import CURSOR_PATTERN as STORED_CURSOR


def test_the_published_cursor_pattern_is_the_one_storage_reads():
    assert CURSOR_PATTERN == STORED_CURSOR and re.fullmatch(CURSOR_PATTERN[1:-1], "")


def commands(app: typer.Typer) -> set[str]:
    """Every command path of a Typer app (`jobs list`, `run` …)."""
    found: set[str] = set()

    def walk(command: object, prefix: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            if getattr(sub, "commands", None):
                walk(sub, path)
            else:
                found.add(path)

    walk(typer.main.get_command(app), "")
    return found


def test_every_cli_command_works_remotely_or_says_it_belongs_to_the_operators_machine():
    from forge.cli import remote
    from forge.cli.main import app

    local, remote_commands = commands(app), commands(remote.app)
    missing = sorted(c for c in local - remote_commands if c.split()[0] not in remote.LOCAL_ONLY
                     and c not in remote.LOCAL_ONLY_COMMANDS)
    assert not missing, f"commands with no remote counterpart (forge/cli/remote*.py): {missing}"
    assert set(remote.LOCAL_ONLY) <= {c.split()[0] for c in local}
