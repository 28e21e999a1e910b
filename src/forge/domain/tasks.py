"""What a domain's task is and how it is evaluated: the `[task]` and `[eval_set]` tables, and how one answer is
scored against the teacher's: exact match and F1 for classification and extraction (the value parsed by the
domain's rule), JSON-schema validity for structured output, function-name and name-plus-arguments accuracy for tool
use, chrF for free text. Pure."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any, Literal

from jsonschema.validators import validator_for
from pydantic import Field, field_validator, model_validator

from forge.domain.sections import MAX_PATTERN, Section, compiles, json_schema

_METADATA_KEY = re.compile(r"metadata\.[A-Za-z0-9_.-]{1,64}")
TaskType = Literal["generation", "classification", "extraction", "structured", "tool_use"]


class TaskRules(Section):
    """A domain's `[task]` table: what kind of answers its students give and how each is checked."""

    type: TaskType = Field("generation", description="generation (chrF to the teacher), classification, extraction, "
                                                     "structured (JSON) or tool_use.")
    parse: str | None = Field(None, max_length=MAX_PATTERN,
                              description="Regex finding the label or value in an answer (its first group, else the "
                                          "whole match); unset: the whole answer, trimmed.")
    labels: list[str] = Field(default_factory=list, max_length=500,
                              description="classification: the allowed labels; another one counts as wrong.")
    case_sensitive: bool = Field(False, description="Compare labels and values with their case.")
    json_schema: dict[str, Any] | None = Field(None, description="structured: the JSON Schema answers must satisfy.")

    @field_validator("parse")
    @classmethod
    def _parse_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            compiles(pattern)
        return pattern

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        return json_schema(schema)

    @model_validator(mode="after")
    def _fits_type(self) -> "TaskRules":
        if self.type == "structured" and self.json_schema is None:
            raise ValueError("a structured task needs json_schema: the JSON Schema its answers must satisfy")
        if self.labels and self.type != "classification":
            raise ValueError("labels are for classification tasks only")
        return self


class EvalSetRules(Section):
    """A domain's `[eval_set]` table: how big its held-out set grows, how fast, and what it is stratified by."""

    size: int = Field(200, ge=1, le=2000, description="Conversations the set grows to; then it stays frozen.")
    max_share: float = Field(0.2, gt=0, le=0.5,
                             description="At most this share of the new golden conversations joins the set per run.")
    stratify_by: str = Field("auto", description="auto (the task's label or function, else metadata.category), "
                                                 "task, none, or metadata.KEY.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds which conversations are held out.")

    @field_validator("stratify_by")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in ("auto", "task", "none") or _METADATA_KEY.fullmatch(value):
            return value
        raise ValueError("must be auto, task, none or metadata.KEY (KEY: letters, digits, '_', '.', '-')")


@dataclass
class ItemScore:
    """One answer against the teacher's: `score` 0–100 (what gates compare), the task's measures, what failed."""

    score: float
    metrics: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    value: str | None = None  # the label or value parsed from the answer (classification, extraction)


def parse_value(rules: TaskRules, text: str) -> str | None:
    """The label or value an answer gives by the domain's rule, normalised; None when the rule finds none."""
    if rules.parse:
        found = re.search(rules.parse, text, re.M | (0 if rules.case_sensitive else re.I))
        if found is None:
            return None
        text = found.group(1) if found.re.groups else found.group(0)
        if text is None:
            return None
    value = " ".join(text.split()).strip(" .;:,!\"'`*")
    if not value:
        return None
    return value if rules.case_sensitive else value.casefold()


def token_f1(prediction: str | None, reference: str | None) -> float:
    """SQuAD-style F1 over lower-cased words without punctuation; 1.0 when both are empty."""
    pred, ref = _tokens(prediction or ""), _tokens(reference or "")
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def json_value(text: str) -> Any:
    """The JSON an answer holds (whole, or its first ``` block); None when there is none."""
    candidates = [text.strip()] + re.findall(r"```(?:json)?[^\n]*\n(.*?)```", text, re.S)
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def field_f1(prediction: Any, reference: Any) -> float:
    """F1 over the flattened `path=value` pairs of two JSON values."""
    pred, ref = Counter(_flatten(prediction)), Counter(_flatten(reference))
    if not pred or not ref:
        return float(pred == ref)
    common = sum((pred & ref).values())
    if not common:
        return 0.0
    precision, recall = common / sum(pred.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def tool_calls(calls: Any) -> list[tuple[str, Any]]:
    """(function name, parsed arguments) of each call in an OpenAI `tool_calls` list (or a legacy function_call)."""
    if isinstance(calls, dict):
        calls = [{"function": calls}]
    found = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                arguments = arguments.strip()
        found.append((function["name"], arguments if arguments is not None else {}))
    return found


def reference_problem(rules: TaskRules, text: str, calls: Any = None) -> str | None:
    """Why the teacher's answer cannot serve as a reference for this task (None when it can)."""
    if rules.type == "classification":
        value = parse_value(rules, text)
        if value is None:
            return "the task's parse rule finds no label in the teacher's answer"
        if rules.labels and value not in _labels(rules):
            return f"the teacher's label '{value}' is not one of the domain's labels"
    elif rules.type == "extraction" and parse_value(rules, text) is None:
        return "the task's parse rule finds no value in the teacher's answer"
    elif rules.type == "structured" and not _valid_json(rules, text):
        return "the teacher's answer is not JSON that satisfies the task's json_schema"
    elif rules.type == "tool_use" and not tool_calls(calls) and not text.strip():
        return "the teacher's answer has neither text nor tool calls"
    elif rules.type == "generation" and not text.strip():
        return "the teacher's answer is empty"
    return None


def stratum(rules: TaskRules, text: str, calls: Any = None) -> str | None:
    """What an eval set is stratified by when the task says: the label, or the first function called."""
    if rules.type == "classification":
        return parse_value(rules, text)
    if rules.type == "tool_use":
        named = tool_calls(calls)
        return named[0][0] if named else "(text)"
    return None


def score_answer(rules: TaskRules, answer: str, answer_calls: Any, reference: str, reference_calls: Any,
                 similarity: float) -> ItemScore:
    """Score one answer against the teacher's by the task's rule; `similarity` is chrF (0–100) of the two texts."""
    shown = {"similarity": similarity}
    if rules.type == "classification":
        value, expected = parse_value(rules, answer), parse_value(rules, reference)
        allowed = not rules.labels or value in _labels(rules)
        hit = value is not None and allowed and value == expected
        failed = [] if hit else ["no label found" if value is None else f"label '{value}', expected '{expected}'"]
        return ItemScore(100.0 * hit, {**shown, "exact_match": float(hit)}, failed, value)
    if rules.type == "extraction":
        value, expected = parse_value(rules, answer), parse_value(rules, reference)
        f1 = token_f1(value, expected) if value is not None else 0.0
        hit = value is not None and value == expected
        failed = [] if hit else ["no value found" if value is None else f"value '{value}', expected '{expected}'"]
        return ItemScore(round(100.0 * f1, 2), {**shown, "exact_match": float(hit), "f1": round(f1, 4)}, failed, value)
    if rules.type == "structured":
        valid = _valid_json(rules, answer)
        overlap = field_f1(json_value(answer), json_value(reference)) if valid else 0.0
        failed = [] if valid else ["not JSON satisfying the task's json_schema"]
        score = 50.0 + 50.0 * overlap if valid else 0.0
        return ItemScore(round(score, 2), {**shown, "json_valid": float(valid), "field_f1": round(overlap, 4)}, failed)
    if rules.type == "tool_use":
        mine, expected = tool_calls(answer_calls), tool_calls(reference_calls)
        names = [n for n, _ in mine] == [n for n, _ in expected]
        both = names and [a for _, a in mine] == [a for _, a in expected]
        failed = [] if both else [f"called {[n for n, _ in mine] or 'no function'}, expected "
                                  f"{[n for n, _ in expected] or 'no function'}" if not names else
                                  "right functions, wrong arguments"]
        metrics = {**shown, "function_name_accuracy": float(names), "function_name_and_args_accuracy": float(both)}
        return ItemScore(50.0 * names + 50.0 * both, metrics, failed)
    return ItemScore(similarity, shown, [] if answer.strip() else ["empty answer"])


def set_metrics(rules: TaskRules, scores: list[ItemScore], references: list[str | None]) -> dict[str, float]:
    """The task's measures over a whole set (means, and macro-F1 over the labels for classification)."""
    if not scores:
        return {}
    keys = sorted({k for s in scores for k in s.metrics})
    found = {k: round(fmean(s.metrics.get(k, 0.0) for s in scores), 4) for k in keys if k != "similarity"}
    if rules.type == "classification":
        found["macro_f1"] = round(_macro_f1([s.value for s in scores], references), 4)
    return found


def _macro_f1(predicted: list[str | None], expected: list[str | None]) -> float:
    labels = {e for e in expected if e is not None}
    if not labels:
        return 0.0
    f1s = []
    for label in labels:
        tp = sum(p == label and e == label for p, e in zip(predicted, expected))
        fp = sum(p == label and e != label for p, e in zip(predicted, expected))
        fn = sum(p != label and e == label for p, e in zip(predicted, expected))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return fmean(f1s)


def _labels(rules: TaskRules) -> set[str]:
    return {label if rules.case_sensitive else label.casefold() for label in rules.labels}


def _valid_json(rules: TaskRules, text: str) -> bool:
    value = json_value(text)
    if value is None or rules.json_schema is None:
        return value is not None
    return not any(validator_for(rules.json_schema)(rules.json_schema).iter_errors(value))


def _tokens(text: str) -> list[str]:
    return text.lower().translate(str.maketrans("", "", string.punctuation)).split()


def _flatten(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in sorted(value.items()) for p in _flatten(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _flatten(v, f"{path}[{i}]")]
    return [f"{path}={json.dumps(value, sort_keys=True)}"]
