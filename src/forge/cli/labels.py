"""The `update` commands' options (name, description, tags), their one answer line, and one way of printing stats."""

from __future__ import annotations

import json
from typing import Any, List, Optional

import typer
from pydantic import ValidationError

from forge.cli.common import out
from forge.domain.labels import Labels

NAME = typer.Option(None, "--name", help="A short name.")
DESCRIPTION = typer.Option(None, "--description", help="Free text.")
TAGS = typer.Option(None, "--tag", help="A tag (repeat for several); replaces the tags. --tag '' clears them.")


def labels(name: Optional[str], description: Optional[str], tags: Optional[List[str]]) -> Labels:
    """The fields given, validated as the API validates them; a bad one stops the command naming it."""
    given: dict[str, Any] = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
    if tags is not None:
        given["tags"] = [t for t in tags if t]
    if not given:
        raise typer.BadParameter("give --name, --description or --tag")
    try:
        return Labels.model_validate(given)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))


def print_labelled(identifier: str, labelled: Any) -> None:
    """What an `update` command answers, local or remote: the id, then its name and tags ('-' when none)."""
    out.print(f"{identifier}: name {labelled.name or '-'}, tags {', '.join(labelled.tags) or '-'}", markup=False)


def print_stats(stats: dict[str, Any]) -> None:
    out.print_json(json.dumps(stats))
