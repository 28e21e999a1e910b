"""Id types for path parameters, query parameters and body fields: a value that is not of its id's format is a 422
naming the parameter and the format, before any route code (or storage) sees it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from forge.domain import ids


def _typed(fmt: ids.IdFormat) -> Any:
    def check(value: str) -> str:
        if not fmt.valid(value):
            # No context dict: the rule's `{tenant}` placeholders are text, not template fields.
            raise PydanticCustomError("invalid_id", f"not a {fmt.kind}; expected {fmt.rule}")
        return value

    schema = {"type": "string", "pattern": fmt.anchored, "description": f"A {fmt.kind}: {fmt.rule}."}
    return Annotated[str, AfterValidator(check), WithJsonSchema(schema)]


JobId = _typed(ids.JOB)
DatasetId = _typed(ids.DATASET)
ModelId = _typed(ids.MODEL)
TraceId = _typed(ids.TRACE)
DomainName = _typed(ids.DOMAIN)
