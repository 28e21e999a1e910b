"""The dashboard's files ship in the wheel and load nothing from anywhere but Forge."""

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from forge.api.dashboard import STATIC

ROOT = Path(__file__).parents[2]
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, never fetched


def test_every_dashboard_file_is_named_by_the_package_data_so_the_wheel_ships_it():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["forge.api.dashboard"]
    files = [p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert files and [f for f in files if not any(fnmatch(f, g) for g in globs)] == []


def test_no_dashboard_file_names_another_origin():
    for path in STATIC.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8").replace(SVG_NAMESPACE, "")
            assert not re.search(r"https?://|(?<![:\w])//[\w.-]+\.\w", text), f"{path.name} names another origin"
