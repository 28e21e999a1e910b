"""Benchmark suites: packaged under `forge/domain_templates/benchmarks/<domain>.jsonl`, or the user's own in
`$FORGE_HOME/benchmarks/<domain>.jsonl` (which replaces the packaged one)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from forge.domain.benchmarks import BenchmarkInvalid, BenchmarkTask, parse_benchmark


def template_benchmark(domain: str, home: Path | None = None) -> list[BenchmarkTask] | None:
    """A template's tasks (the operator's file, else the packaged one); None when it has none."""
    user = home / "benchmarks" / f"{domain}.jsonl" if home else None
    packaged = resources.files("forge.domain_templates") / "benchmarks" / f"{domain}.jsonl"
    if (user is None or not user.is_file()) and not packaged.is_file():
        return None
    return load_benchmark(domain, home)


def load_benchmark(domain: str, home: Path | None = None) -> list[BenchmarkTask]:
    """The domain's tasks; a bad line raises BenchmarkInvalid naming the file and the line."""
    user = home / "benchmarks" / f"{domain}.jsonl" if home else None
    if user is not None and user.is_file():
        with user.open(encoding="utf-8") as lines:
            return parse_benchmark(lines, str(user))
    packaged = resources.files("forge.domain_templates") / "benchmarks" / f"{domain}.jsonl"
    if not packaged.is_file():
        where = user or Path("$FORGE_HOME/benchmarks") / f"{domain}.jsonl"
        raise BenchmarkInvalid(
            f"No benchmark for domain '{domain}'. Write one task a line to {where}: "
            '{"id", "category", "prompt", "requirements", "gold_answer", "format", "checks"}.'
        )
    return parse_benchmark(packaged.read_text(encoding="utf-8").splitlines(), f"packaged benchmarks/{domain}.jsonl")
