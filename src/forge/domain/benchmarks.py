"""Benchmark tasks: one JSON object a line; a bad line is refused with its number and what is wrong. Pure."""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forge.domain.errors import ConfigError
from forge.domain.sections import json_schema

Format = Literal["python", "json", "document", "text"]


class BenchmarkInvalid(ConfigError):
    title = "Invalid benchmark"


class Checks(BaseModel):
    """What an answer must satisfy beyond its requirements; every check counts toward correctness."""

    model_config = ConfigDict(extra="forbid")

    regex: list[str] = Field(default_factory=list, description="Each must match (case-insensitive).")
    forbid: list[str] = Field(default_factory=list, description="None may match (case-insensitive).")
    json_schema: dict[str, Any] | None = Field(None, description="The answer's JSON must validate against it.")
    python_tests: str | None = Field(None, description="Python run after the answer's code; passing = exit 0.")

    @field_validator("regex", "forbid")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"regex {pattern!r} does not compile: {exc}") from None
        return patterns

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        return json_schema(schema)

    @field_validator("python_tests")
    @classmethod
    def _parses(cls, code: str | None) -> str | None:
        if code is not None:
            try:
                ast.parse(code)
            except SyntaxError as exc:
                raise ValueError(f"python_tests has a syntax error on its line {exc.lineno}: {exc.msg}") from None
        return code

    @property
    def count(self) -> int:
        return len(self.regex) + len(self.forbid) + (self.json_schema is not None) + (self.python_tests is not None)


class BenchmarkTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    requirements: list[str] = Field(default_factory=list, description="Regexes; each one the answer covers counts.")
    gold_answer: str = Field(min_length=1)
    format: Format = "document"
    checks: Checks = Field(default_factory=Checks)

    @field_validator("requirements")
    @classmethod
    def _requirements_compile(cls, patterns: list[str]) -> list[str]:
        return Checks._compiles(patterns)

    @model_validator(mode="after")
    def _python_tests_need_code(self) -> "BenchmarkTask":
        if self.checks.python_tests and self.format != "python":
            raise ValueError("a task with python_tests must have format 'python'")
        return self


def parse_benchmark(lines: Iterable[str], origin: str) -> list[BenchmarkTask]:
    """Every task in a JSONL text; the first bad line raises BenchmarkInvalid naming `origin` and the line."""
    tasks: list[BenchmarkTask] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{origin} line {number}"
        try:
            task = BenchmarkTask.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise BenchmarkInvalid(f"{where} is not valid JSON ({exc.msg} at column {exc.colno}); fix or remove "
                                   "that line.") from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'task'}: {e['msg']}" for e in exc.errors())
            raise BenchmarkInvalid(f"{where} is not a valid task ({problems}); fix that line.") from None
        if task.id in seen:
            raise BenchmarkInvalid(f"{where} repeats task id '{task.id}' from line {seen[task.id]}; ids must be unique.")
        seen[task.id] = number
        tasks.append(task)
    if not tasks:
        raise BenchmarkInvalid(f"{origin} holds no tasks; add one JSON task a line.")
    return tasks
