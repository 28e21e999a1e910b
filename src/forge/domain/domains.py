"""Domain configs: what a domain's students are told, which traces they learn from, and how they are scored and
evaluated. One schema for a domain file, the API and the dashboard: an unknown key, a wrong type or a value out of
range is refused naming the field and what is allowed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from forge.domain.canary import CanaryPolicy
from forge.domain.drift import DriftPolicy
from forge.domain.gates import Gates
from forge.domain.names import NAME_RULE, valid_name
from forge.domain.sections import Section, compiles
from forge.domain.tasks import EvalSetRules, TaskRules


class FilterRules(Section):
    min_response_chars: int = Field(1, ge=0)
    max_response_chars: int = Field(32_000, ge=1)
    require_code_block: bool = False
    drop_refusals: bool = True
    exclude_patterns: list[str] = Field(default_factory=list, max_length=100,
                                        description="Regexes; a matching trace is dropped.")
    # Curation (issue 3): near-duplicates by MinHash/LSH over prompt + answer; control tokens such as
    # <|endoftext|> in training text are dropped, escaped or kept; examples over the model's token limit are
    # dropped or lose their oldest turns.
    near_dup_threshold: float | None = Field(0.85, gt=0, le=1,
                                             description="Jaccard similarity; \"off\" (null) turns it off.")
    special_tokens: Literal["drop", "escape", "keep"] = "drop"
    token_limit_policy: Literal["drop", "truncate"] = "drop"

    @field_validator("near_dup_threshold", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        return None if value in ("off", False) else value  # a TOML file cannot say null

    @field_validator("exclude_patterns")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        return [compiles(p) for p in patterns]

    @model_validator(mode="after")
    def _bounds(self) -> "FilterRules":
        if self.min_response_chars > self.max_response_chars:
            raise ValueError("min_response_chars is larger than max_response_chars")
        return self


class ScoringWeights(Section):

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


class RoutingRules(Section):
    """How the router brings in a newly passed student: its canary share, and what keeps a caller on one model."""

    canary_percent: float = Field(10.0, gt=0, le=100)
    sticky_by: Literal["user", "conversation"] = "user"


class DomainConfig(Section):
    name: str
    description: str = Field("", max_length=500)
    system_prompt: str = Field("", max_length=20_000)
    model_prefix: str = Field("", max_length=64, description="Names of this domain's students start with it, e.g. "
                                                            "'forge-coding'; default: forge-{name}.")
    pii_policy: Literal["redact", "drop"] = "redact"
    trigger_threshold: int | None = Field(None, ge=0, le=10_000_000, description="New golden traces the nightly run "
                                          "needs for this domain; default FORGE_TRIGGER_THRESHOLD.")
    filters: FilterRules = Field(default_factory=FilterRules)
    scoring: ScoringWeights = Field(default_factory=ScoringWeights)
    gates: Gates = Field(default_factory=Gates)
    routing: RoutingRules = Field(default_factory=RoutingRules)
    canary: CanaryPolicy = Field(default_factory=CanaryPolicy)  # how a candidate earns production (issue 21)
    drift: DriftPolicy = Field(default_factory=DriftPolicy)  # what is watched on the production student
    task: TaskRules = Field(default_factory=TaskRules)
    eval_set: EvalSetRules = Field(default_factory=EvalSetRules)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not valid_name(value):
            raise ValueError(NAME_RULE)
        return value

    @field_validator("model_prefix")
    @classmethod
    def _prefix_rule(cls, value: str) -> str:
        if value and not valid_name(value):
            raise ValueError(NAME_RULE)
        return value

    @model_validator(mode="after")
    def _prefix(self) -> "DomainConfig":
        self.model_prefix = self.model_prefix or f"forge-{self.name}"
        return self
