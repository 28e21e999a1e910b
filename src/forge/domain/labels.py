"""What a person calls a job, dataset or model: a name, a description and tags (`PUT` on it, `forge … update`).

Labels are for people and their tooling; no stage reads them. A field left out of an update stays as it was; `null`
clears a name or description, `[]` clears the tags.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from forge.domain.models import Labelled

TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:=-]{0,63}$"
MAX_TAGS = 32
Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN)]


class Labels(BaseModel):
    """The body of `PUT /api/v1/{datasets,forge/jobs,models}/{id}`: only the fields sent change."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(None, min_length=1, max_length=200, description="A short name; null clears it.")
    description: str | None = Field(None, max_length=4000, description="Free text; null clears it.")
    tags: list[Tag] | None = Field(None, max_length=MAX_TAGS, json_schema_extra={"uniqueItems": True}, description=(
        f"Up to {MAX_TAGS} distinct tags (letters, digits and _ . : = -, up to 64 characters); [] clears them."))

    @field_validator("tags")
    @classmethod
    def _distinct(cls, tags: list[str] | None) -> list[str] | None:
        if tags is not None and len(set(tags)) != len(tags):
            raise ValueError("tags must be distinct; send each tag once")
        return tags

    def apply(self, record: Labelled) -> None:
        """Set the fields this update sent on `record`."""
        for field in self.model_fields_set:
            value: Any = getattr(self, field)
            setattr(record, field, [] if field == "tags" and value is None else value)
