"""A tenant's own domains: the versioned record, reading a domain file, `--set key=value` edits, what changed
between two versions, and writing a domain back out as TOML. Pure."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime
from typing import Any

from pydantic import Field, ValidationError

from forge.domain.domains import DomainConfig
from forge.domain.errors import ForgeError, InvalidInput
from forge.domain.models import Record, utcnow
from forge.domain.sections import problems

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALARS = ("name", "description", "system_prompt", "model_prefix", "pii_policy", "trigger_threshold")


class DomainInvalid(InvalidInput):
    title = "Invalid domain"


class BenchmarkRejected(InvalidInput):
    title = "Invalid benchmark"


class DomainDisabled(ForgeError):
    status = 409
    title = "Domain disabled"


class DomainInUse(ForgeError):
    status = 409
    title = "Domain serves traffic"


class DomainRecord(Record):
    """One version of a tenant's domain. The head row is the current version; every version is also kept."""

    tenant: str
    name: str
    version: int = 1
    enabled: bool = True
    deleted: bool = False
    config: dict[str, Any]  # a DomainConfig, in the domain file's schema (snake_case)
    benchmark: dict[str, Any] | None = None  # the tenant's own tasks: {"sha256", "tasks", "categories"}
    source: str = "api"  # what made this version: template:NAME, file, api, edit, benchmark, disable, …
    change: list[str] = Field(default_factory=list)  # what differs from the version before, one line per key
    actor: str | None = None
    created_at: datetime = Field(default_factory=utcnow)  # when the domain was first created
    updated_at: datetime = Field(default_factory=utcnow)  # when this version was made

    def domain(self) -> DomainConfig:
        return DomainConfig.model_validate(self.config)

    def public(self) -> dict[str, Any]:
        """The record as the API shows it: the envelope in camelCase, the config in the file's own schema."""
        shown = self.model_dump(mode="json", by_alias=True, exclude={"config", "tenant"})
        shown["config"] = self.config
        return shown


def validated(data: Any, *, origin: str = "domain") -> DomainConfig:
    """A DomainConfig, or DomainInvalid naming every bad field and what is allowed (nothing is stored)."""
    try:
        return DomainConfig.model_validate(data)
    except ValidationError as exc:
        raise DomainInvalid(f"The {origin} is not a valid domain: {problems(exc)}. Fix these fields and retry.") \
            from None


def parse_file(text: str, name: str, *, origin: str = "domain file") -> DomainConfig:
    """A domain file (TOML) for the domain `name`: a name inside the file must agree with it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DomainInvalid(f"The {origin} is not valid TOML ({exc}); fix that line and retry.") from None
    return with_name(data, name, origin)


def with_name(data: Any, name: str, origin: str = "domain") -> DomainConfig:
    """Validate `data` as domain `name` (a `name` in it must match)."""
    if not isinstance(data, dict):
        raise DomainInvalid(f"The {origin} must be a table (a JSON object) of domain settings.")
    if "name" in data and data["name"] != name:
        raise DomainInvalid(f"name: the {origin} names domain {data['name']!r}, but this is domain {name!r}; remove "
                            "the name or make them agree.")
    return validated({**data, "name": name}, origin=origin)


def with_settings(config: DomainConfig, pairs: dict[str, Any]) -> DomainConfig:
    """The config with each dotted key set (`gates.min_score` → 70); validated as a whole afterwards."""
    data = config.model_dump(mode="json")
    for key, value in pairs.items():
        *path, leaf = key.split(".")
        if key == "name":
            raise DomainInvalid("name: a domain cannot be renamed; create one under the new name (--from-domain) "
                                "and delete this one.")
        target = data
        for part in path:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise DomainInvalid(f"{key}: '{part}' is a setting, not a table of settings.")
        target[leaf] = value
    return validated(data, origin="edited domain")


def setting_value(raw: str) -> Any:
    """A `--set` value as TOML reads it (70, 0.5, true, ["a", "b"], {…}); anything else is the text itself."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """One line per setting that differs, `key: old → new`; every key when there was no version before."""
    before, after = _flat(old or {}), _flat(new)
    lines = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            shown = lambda v: "unset" if v is None else json.dumps(v, ensure_ascii=False)[:80]  # noqa: E731
            lines.append(f"{key}: {shown(after.get(key))}" if old is None else
                         f"{key}: {shown(before.get(key))} → {shown(after.get(key))}")
    return lines


def to_toml(config: DomainConfig) -> str:
    """The config as a domain file that `parse_file` reads back to the same config."""
    data = config.model_dump(mode="json")
    lines = [f"{key} = {_value(data[key], key)}" for key in _SCALARS if data.get(key) is not None]
    for table, values in data.items():
        if not isinstance(values, dict):
            continue
        lines += ["", f"[{table}]"]
        lines += [f"{_key(k)} = {_value(v, f'{table}.{k}')}" for k, v in values.items() if v is not None or
                  (table, k) == ("filters", "near_dup_threshold")]
    return "\n".join(lines) + "\n"


def _value(value: Any, key: str) -> str:
    if value is None:
        if key == "filters.near_dup_threshold":
            return '"off"'
        raise InvalidInput(f"{key} holds a null, which TOML cannot write; export this domain as JSON instead.")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        if "\n" in value and "'''" not in value and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", value):
            return "'''\n" + value + "'''"  # a literal block: a system prompt stays readable
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, key) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v, key)}" for k, v in value.items()) + " }" if value else "{}"
    raise InvalidInput(f"{key} holds a value TOML cannot write ({type(value).__name__}).")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key != "json_schema":
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat
