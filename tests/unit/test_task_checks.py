"""The checks for the task types people distil: each answer scored against the teacher's by the domain's rule."""

import json

import pytest
from pydantic import ValidationError

from forge.domain.tasks import TaskRules, parse_value, reference_problem, score_answer, set_metrics, token_f1

SUPPORT = TaskRules(type="classification", parse=r"team:\s*(\w+)", labels=["billing", "shipping", "account"])


def score(rules, answer, reference, answer_calls=None, reference_calls=None):
    return score_answer(rules, answer, answer_calls, reference, reference_calls, similarity=50.0)


def test_classification_parses_the_label_by_the_domains_rule_and_scores_exact_match():
    right = score(SUPPORT, "Team: Billing. I moved your ticket.", "team: billing")
    wrong = score(SUPPORT, "team: shipping", "team: billing")
    none = score(SUPPORT, "I think it is about money.", "team: billing")
    assert (right.score, right.metrics["exact_match"], right.value) == (100.0, 1.0, "billing")
    assert wrong.score == 0.0 and wrong.failed == ["label 'shipping', expected 'billing'"]
    assert none.score == 0.0 and none.failed == ["no label found"]


def test_a_label_outside_the_domains_labels_counts_as_wrong_even_when_the_teacher_said_it():
    assert score(SUPPORT, "team: legal", "team: legal").score == 0.0
    assert reference_problem(SUPPORT, "team: legal") == "the teacher's label 'legal' is not one of the domain's labels"
    assert reference_problem(SUPPORT, "no idea") == "the task's parse rule finds no label in the teacher's answer"


def test_classification_reports_accuracy_and_macro_f1_over_the_set():
    pairs = [("team: billing", "team: billing"), ("team: billing", "team: shipping"),
             ("team: account", "team: account")]
    scores = [score(SUPPORT, a, r) for a, r in pairs]
    found = set_metrics(SUPPORT, scores, [parse_value(SUPPORT, r) for _, r in pairs])
    assert found["exact_match"] == pytest.approx(2 / 3, abs=1e-4)
    # billing: P 1/2 R 1 → 2/3; shipping: 0; account: 1 → macro (2/3 + 0 + 1) / 3
    assert found["macro_f1"] == pytest.approx((2 / 3 + 0 + 1) / 3, abs=1e-4)


def test_extraction_scores_token_f1_and_exact_match_of_the_parsed_value():
    rules = TaskRules(type="extraction", parse=r"order (?:number )?([A-Z0-9 -]+)")
    exact = score(rules, "It is order AB-123.", "order AB-123")
    partial = score(rules, "order AB 123 999", "order AB 123")
    assert (exact.score, exact.metrics["exact_match"]) == (100.0, 1.0)
    assert partial.metrics["exact_match"] == 0.0
    assert partial.score == pytest.approx(100 * token_f1("ab 123 999", "ab 123"))
    assert token_f1("the cat sat", "cat sat down") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))


def test_structured_output_must_satisfy_the_schema_and_is_credited_by_its_fields():
    rules = TaskRules(type="structured", json_schema={"type": "object", "required": ["id", "priority"],
                                                      "properties": {"priority": {"enum": ["low", "high"]}}})
    teacher = json.dumps({"id": 7, "priority": "high"})
    assert score(rules, "```json\n" + teacher + "\n```", teacher).score == 100.0
    half = score(rules, json.dumps({"id": 8, "priority": "high"}), teacher)
    assert half.metrics["json_valid"] == 1.0 and half.score == 75.0  # valid, one of two fields right
    bad = score(rules, json.dumps({"id": 7, "priority": "urgent"}), teacher)
    assert bad.score == 0.0 and bad.failed == ["not JSON satisfying the task's json_schema"]
    with pytest.raises(ValidationError, match="needs json_schema"):
        TaskRules(type="structured")


def test_tool_use_measures_function_name_accuracy_and_name_plus_arguments_accuracy():
    rules = TaskRules(type="tool_use")

    def call(name, **args):
        return [{"type": "function", "id": "c1", "function": {"name": name, "arguments": json.dumps(args)}}]

    expected = call("refund", order="A1", amount=20)
    both = score(rules, "", "", call("refund", amount=20, order="A1"), expected)  # argument order does not matter
    name_only = score(rules, "", "", call("refund", order="A1", amount=25), expected)
    wrong = score(rules, "I will refund it.", "", None, expected)
    assert both.metrics == {"similarity": 50.0, "function_name_accuracy": 1.0, "function_name_and_args_accuracy": 1.0}
    assert (name_only.score, name_only.failed) == (50.0, ["right functions, wrong arguments"])
    assert wrong.score == 0.0 and wrong.metrics["function_name_accuracy"] == 0.0


def test_free_text_is_scored_by_similarity_to_the_teachers_answer():
    assert score(TaskRules(), "some answer", "the teacher's").score == 50.0


def test_a_parse_rule_that_does_not_compile_or_labels_on_another_task_are_refused_naming_the_field():
    with pytest.raises(ValidationError, match="parse") as error:
        TaskRules(type="classification", parse="(unclosed")
    assert "does not compile" in str(error.value)
    with pytest.raises(ValidationError, match="labels are for classification tasks only"):
        TaskRules(type="extraction", labels=["a"])
    with pytest.raises(ValidationError, match="unknown key 'lables'; allowed: case_sensitive, json_schema, labels"):
        TaskRules.model_validate({"type": "classification", "lables": ["a"]})


def test_a_json_schema_that_refers_outside_itself_is_refused_in_a_domain_and_in_a_benchmark():
    from forge.domain.benchmarks import BenchmarkInvalid, parse_benchmark

    remote = {"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/evil.json"}}}
    with pytest.raises(ValidationError, match="only local references"):
        TaskRules(type="structured", json_schema=remote)
    assert TaskRules(type="structured", json_schema={"$defs": {"x": {"type": "string"}}, "$ref": "#/$defs/x"})
    task = {"id": "a", "category": "c", "prompt": "p", "gold_answer": "{}", "format": "json",
            "checks": {"json_schema": remote}}
    with pytest.raises(BenchmarkInvalid, match="line 1 .*only local references"):
        parse_benchmark([json.dumps(task)], "tasks.jsonl")
