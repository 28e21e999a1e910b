"""The folders of src/forge are layers and every import points one way (docs/architecture.md): a module may import
its own layer and the layers below it, never one above, and never a private name of another package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "forge"

# Lowest first. A package not listed here fails the test until it is given a place.
LAYERS: list[set[str]] = [
    {"domain"},
    {"config", "storage", "telemetry", "tokens", "domain_templates", "demo"},
    {"providers"},
    {"curation", "evaluation"},
    {"bootstrap"},
    {"services", "serving"},
    {"stages"},
    {"workflow"},
    {"api", "cli", "client"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "forge" and len(parts) > 1 else None


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) for every `forge` import in a file, lazy ones inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("forge"):
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("forge")]
    return found


def violations(root: Path = SRC) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        here = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if here == "__init__":
            continue
        if here not in RANK:
            problems.append(f"{rel}: package '{here}' has no layer in tests/unit/test_layers.py")
            continue
        for line, module, names in imports(path):
            there = package_of(module)
            if there is None or there == here:
                continue
            if there not in RANK:
                problems.append(f"{rel}:{line} imports {module}, which has no layer")
            elif RANK[there] > RANK[here]:
                problems.append(f"{rel}:{line} imports {module}: {here} (layer {RANK[here]}) may not import "
                                f"{there} (layer {RANK[there]})")
            private = [n for n in names if n.startswith("_")] + [p for p in module.split(".")[2:] if p.startswith("_")]
            if private:
                problems.append(f"{rel}:{line} uses private {', '.join(private)} of {module}")
    return problems


def test_every_import_in_src_forge_points_down_the_layers():
    problems = violations()
    assert not problems, "imports against the layers (docs/architecture.md):\n  " + "\n  ".join(problems)


def test_a_back_edge_is_caught(tmp_path: Path):
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "rules.py").write_text("from forge.services.runs import trigger\n", encoding="utf-8")
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "gather.py").write_text("def f():\n    from forge.api.auth import _key\n",
                                                   encoding="utf-8")
    found = violations(tmp_path)
    assert any("domain (layer 0) may not import services" in p for p in found)
    assert any("stages (layer 6) may not import api" in p for p in found)
    assert any("private _key" in p for p in found)


@pytest.mark.parametrize("names", LAYERS)
def test_every_layer_names_a_package_that_exists(names: set[str]):
    present = {p.name for p in SRC.iterdir() if p.is_dir()} | {p.stem for p in SRC.glob("*.py")}
    assert names & present, f"none of {sorted(names)} exists under src/forge"


def test_readme_and_docs_link_only_to_files_inside_the_repository():
    import re

    root = SRC.parents[1]
    broken = []
    for doc in [root / "README.md", root / "DEVELOPERS.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)", doc.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (doc.parent / target).resolve()
            if not resolved.is_relative_to(root.resolve()) or not resolved.exists():
                broken.append(f"{doc.relative_to(root)} → {target}")
    assert not broken, f"links that leave the repository or lead nowhere: {broken}"
