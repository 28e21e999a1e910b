"""The Dockerfile, read without Docker: a pinned CUDA PyTorch base, pinned packages within pyproject's bounds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def pins() -> dict[str, str]:
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    return {canonicalize_name(n): v for n, v in re.findall(r"([A-Za-z0-9_.\-]+)==([0-9][\w.+\-]*)", runs)}


def test_the_base_image_is_a_cuda_pytorch_image_pinned_to_a_version():
    bases = [rest for word, rest in instructions() if word == "FROM"]
    assert len(bases) == 1
    image, _, tag = bases[0].partition(":")
    assert image == "pytorch/pytorch" and re.fullmatch(r"\d+\.\d+\.\d+-cuda[\d.]+-cudnn\d+-runtime", tag)
    assert pins()["torch"] == tag.split("-")[0], "pin torch to the base image's own version"


def test_every_package_installed_is_pinned_and_satisfies_the_trainers_bounds():
    runs = [rest for word, rest in instructions() if word == "RUN" and "pip install" in rest]
    for run in runs:
        names = [a for a in run.split("pip install", 1)[1].split() if not a.startswith("-") and a != "."]
        for arg in names:
            assert "==" in arg, f"unpinned package in the Dockerfile: {arg}"
    pinned = pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    for spec in project["dependencies"] + extras["azure"] + extras["qlora"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is a dependency but the image does not pin it"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]} breaks {spec}"


def test_the_package_installs_without_pulling_dependencies_and_the_image_runs_forge_trainer():
    steps = instructions()
    assert ("RUN", "pip install --no-deps .") in steps
    copied = {rest.split()[0] for word, rest in steps if word == "COPY"}
    assert {"pyproject.toml", "src", "configs"} <= copied
    assert any(word == "USER" and rest != "root" for word, rest in steps)
    assert ("CMD", '["forge-trainer", "--help"]') in steps
    assert not any(word == "ENTRYPOINT" for word, _ in steps)
