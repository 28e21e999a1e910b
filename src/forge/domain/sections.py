"""The base of every table in a domain file: an unknown key is refused naming it and listing the allowed ones, so
a typo never silently falls back to a default. Pure."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from jsonschema import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

MAX_PATTERN = 500  # characters; a tenant's regex runs over traces and answers, so it stays short


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str] = "key"  # what the message calls an entry: "key", "job setting", "hyperparameter"

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            if unknown:
                raise ValueError(f"unknown {cls.kind} {', '.join(repr(k) for k in unknown)}; allowed: "
                                 f"{', '.join(sorted(cls.model_fields))}")
        return data


def compiles(pattern: str) -> str:
    """The pattern, or ValueError saying why it is not a usable regex."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"regex is {len(pattern)} characters; at most {MAX_PATTERN} are allowed")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regex {pattern!r} does not compile: {exc}") from None
    return pattern


def local_refs_only(schema: Any) -> Any:
    """The JSON Schema, or ValueError when it refers outside itself: a tenant's schema never names a URL or file."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef", "$recursiveRef") and not (isinstance(value, str) and value.startswith("#")):
                raise ValueError(f"{key} {value!r} points outside the schema; only local references ('#/…') are allowed")
            local_refs_only(value)
    elif isinstance(schema, list):
        for value in schema:
            local_refs_only(value)
    return schema


def json_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schema, or ValueError when it is not a valid JSON Schema or refers outside itself."""
    if schema is not None:
        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        local_refs_only(schema)
    return schema


def problems(exc: ValidationError) -> str:
    """A validation error as `field.path: what is wrong`, joined by '; ': every problem names its field."""
    found = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "domain"
        found.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(found)
