"""Paging, the same on every list: `?limit=` (1–1000, default 100) and `?continuation=` (the previous page's
`continuation`, a keyset cursor); the answer is a `Page` (`items`, `continuation`). The OpenAPI document defines the
two parameters once (`components.parameters`, see api/contract.py) and every list refers to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from forge.api.schemas import CURSOR_PATTERN

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
LIMIT_DESCRIPTION = f"Items per page, 1 to {MAX_LIMIT}."
CONTINUATION_DESCRIPTION = ("Where to resume: the `continuation` of the previous page, as it was given. Absent: the "
                            "first page.")


@dataclass(frozen=True)
class Paging:
    limit: int
    continuation: str | None


def paging(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=LIMIT_DESCRIPTION),
    # The pattern is published, not enforced here: a token that is not one is refused by storage with what to do.
    continuation: str | None = Query(None, description=CONTINUATION_DESCRIPTION,
                                     json_schema_extra={"pattern": CURSOR_PATTERN}),
) -> Paging:
    return Paging(limit, continuation)


PagingDep = Annotated[Paging, Depends(paging)]
