"""The text of an OpenAI chat message's `content`, which is a string or a list of parts. Pure."""

from __future__ import annotations

from typing import Any


def content_text(content: Any) -> str:
    """A string as is; the text parts of a list joined; nothing for None."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)
