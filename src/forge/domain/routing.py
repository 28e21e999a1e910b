"""Which model answers a router call: production or the canary by weight, sticky per user or conversation."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, Mapping

from forge.domain.models import Route

Arm = Literal["production", "canary", "teacher"]
BUCKETS = 10_000  # 0.01-point resolution for canary percentages
ALIAS_PREFIX = "forge:"
STUDENT_ARMS = ("production", "canary")  # the arms a student answers on; the router records the arm as metadata.route


def answered_by_student(metadata: Mapping[str, Any]) -> bool:
    """Whether a recorded call was answered by a student: its answer must never become training data."""
    return metadata.get("route") in STUDENT_ARMS


def alias(domain: str) -> str:
    return f"{ALIAS_PREFIX}{domain}"


def domain_of(model: Any, header: str | None) -> str | None:
    """The domain a call names: the `X-Forge-Domain` header wins, else a `forge:{domain}` model alias."""
    if header and header.strip():
        return header.strip()
    if isinstance(model, str) and model.startswith(ALIAS_PREFIX):
        return model[len(ALIAS_PREFIX):]
    return None


def conversation_key(body: Mapping[str, Any], header: str | None = None) -> str:
    """A conversation's identity: an explicit id, else its system and first user message.

    Chat clients resend the whole history each turn, so the opening messages name the conversation without the
    client sending anything new.
    """
    explicit = header or _metadata(body).get("conversation_id")
    if explicit:
        return f"c:{explicit}"
    opening = []
    for message in body.get("messages") or []:
        if isinstance(message, Mapping):
            opening.append([message.get("role"), message.get("content")])
            if message.get("role") == "user":
                break
    digest = hashlib.sha256(json.dumps(opening, sort_keys=True, default=str).encode()).hexdigest()
    return f"h:{digest[:32]}"


def sticky_key(body: Mapping[str, Any], sticky_by: str, conversation_header: str | None = None) -> str:
    """The key a caller sticks to a model by: its `user` when routing by user (conversation when it sends none)."""
    if sticky_by == "user":
        user = body.get("user") or body.get("safety_identifier")
        if isinstance(user, str) and user:
            return f"u:{user}"
    return conversation_key(body, conversation_header)


def bucket(domain: str, key: str) -> int:
    """A stable bucket in [0, BUCKETS): the same key in the same domain always lands in the same one."""
    digest = hashlib.sha256(f"{domain}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def choose(route: Route, key: str) -> tuple[Arm, str | None]:
    """The arm and model version answering `key`; the teacher when the domain has no student in production.

    Buckets below the canary share go to the canary, so raising the share keeps everyone already on it there.
    """
    if route.canary_model and bucket(route.domain, key) < route.canary_percent * (BUCKETS / 100):
        return "canary", route.canary_model
    if route.production_model:
        return "production", route.production_model
    return "teacher", None


def _metadata(body: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = body.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}
