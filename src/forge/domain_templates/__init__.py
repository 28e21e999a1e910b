"""Packaged domain configs (`*.toml` here) plus any the user adds under `$FORGE_HOME/domains/`."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from forge.domain.domains import DomainConfig
from forge.domain.errors import ConfigError, DomainNotFound


def load_domains(home: Path | None = None) -> dict[str, DomainConfig]:
    """All domains by name; a user's file under `$FORGE_HOME/domains/` overrides a packaged one of the same name."""
    found: dict[str, DomainConfig] = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            config = _parse(entry.read_text(encoding="utf-8"), f"packaged {entry.name}")
            found[config.name] = config
    user_dir = home / "domains" if home else None
    if user_dir and user_dir.is_dir():
        for path in sorted(user_dir.glob("*.toml")):
            config = _parse(path.read_text(encoding="utf-8"), str(path))
            found[config.name] = config
    return found


def get_domain(name: str, home: Path | None = None) -> DomainConfig:
    domains = load_domains(home)
    if name not in domains:
        raise DomainNotFound(f"No domain '{name}'. Known domains: {', '.join(sorted(domains))}.")
    return domains[name]


def _parse(text: str, origin: str) -> DomainConfig:
    try:
        return DomainConfig.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ConfigError(f"Domain config {origin} is invalid: {exc}. Fix the file or remove it.") from None
