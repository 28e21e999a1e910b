"""Domain configs: what a domain's students are told, which traces they learn from, and how they are scored."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forge.domain.gates import Gates
from forge.domain.names import NAME_RULE, valid_name


class FilterRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_response_chars: int = Field(1, ge=0)
    max_response_chars: int = Field(32_000, ge=1)
    require_code_block: bool = False
    drop_refusals: bool = True
    exclude_patterns: list[str] = Field(default_factory=list, description="Regexes; a matching trace is dropped.")
    # Curation (issue 3): near-duplicates by MinHash/LSH over prompt + answer; control tokens such as
    # <|endoftext|> in training text are dropped, escaped or kept; examples over the model's token limit are
    # dropped or lose their oldest turns.
    near_dup_threshold: float | None = Field(0.85, gt=0, le=1, description="Jaccard similarity; None turns it off.")
    special_tokens: Literal["drop", "escape", "keep"] = "drop"
    token_limit_policy: Literal["drop", "truncate"] = "drop"

    @model_validator(mode="after")
    def _bounds(self) -> "FilterRules":
        if self.min_response_chars > self.max_response_chars:
            raise ValueError("min_response_chars is larger than max_response_chars")
        for pattern in self.exclude_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"exclude pattern {pattern!r} is not a valid regex ({exc})") from None
        return self


class ScoringWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    structure: float = Field(0.25, ge=0)
    correctness: float = Field(0.25, ge=0)
    similarity: float = Field(0.25, ge=0)
    completeness: float = Field(0.25, ge=0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> "ScoringWeights":
        total = self.structure + self.correctness + self.similarity + self.completeness
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"scoring weights must add up to 1 (they add up to {total:g})")
        return self


class RoutingRules(BaseModel):
    """How the router brings in a newly passed student: its canary share, and what keeps a caller on one model."""

    model_config = ConfigDict(extra="forbid")

    canary_percent: float = Field(10.0, gt=0, le=100)
    sticky_by: Literal["user", "conversation"] = "user"


class DomainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    system_prompt: str = ""
    model_prefix: str = Field(description="Names of this domain's students start with it, e.g. 'forge-coding'.")
    pii_policy: Literal["redact", "drop"] = "redact"
    filters: FilterRules = Field(default_factory=FilterRules)
    scoring: ScoringWeights = Field(default_factory=ScoringWeights)
    gates: Gates = Field(default_factory=Gates)
    routing: RoutingRules = Field(default_factory=RoutingRules)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not valid_name(value):
            raise ValueError(NAME_RULE)
        return value
