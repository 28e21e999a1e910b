"""The rubric: structure, correctness, similarity and completeness, each 0–100, weighted per domain."""

import pytest

from forge.domain.benchmarks import BenchmarkTask
from forge.domain.domains import ScoringWeights
from forge.domain.scoring import code_blocks, json_value, score_task, similarity, structure, summarize

EVEN = ScoringWeights()
GOLD = "The limitation period is six years. It runs from the date of breach.\n\nAct promptly; consult a lawyer."


def task(**fields):
    values = {"id": "t", "category": "contracts", "prompt": "When does the limitation period run?",
              "gold_answer": GOLD, "requirements": [r"six years", r"date of (the )?breach"]}
    return BenchmarkTask(**{**values, **fields})


def test_the_gold_answer_scores_100_and_a_vague_one_scores_far_lower():
    assert score_task(task(), GOLD, EVEN).total == 100.0
    vague = score_task(task(), "It depends.", EVEN)
    assert vague.total < 30 and "requirement 'six years'" in vague.failed


def test_similarity_is_chrf_from_0_to_100():
    assert similarity(GOLD, GOLD) == 100.0
    assert similarity("", GOLD) == 0.0
    close, far = similarity(GOLD.replace("six", "6"), GOLD), similarity("Bananas are yellow.", GOLD)
    assert 60 < close < 100 and far < 25


def test_python_structure_needs_a_fenced_block_that_parses():
    assert structure("```python\ndef f():\n    return 1\n```", "python") == 100
    assert structure("```python\ndef f(:\n```", "python") == 25
    assert structure("def f(): return 1", "python") == 0
    assert code_blocks("```py\na = 1\n```\ntext\n```\nb = 2\n```\n```js\nc\n```") == ["a = 1\n", "b = 2\n"]


def test_json_is_found_whole_or_in_a_json_block():
    assert json_value('{"a": 1}') == {"a": 1}
    assert json_value('Here:\n```json\n[1, 2]\n```') == [1, 2]
    assert json_value("no json here") is None
    assert structure('{"a": 1}', "json") == 100 and structure("{a: 1}", "json") == 0


def test_a_document_is_structured_when_it_has_sentences_blocks_and_an_ending():
    assert structure(GOLD, "document") == 100
    assert structure("one line without an ending", "document") == 0
    assert structure("Cut off in the middle of a sente", "document") == 0


def test_checks_decide_correctness_and_a_forbidden_phrase_zeroes_it():
    checked = task(checks={"regex": [r"six years"], "forbid": [r"guaranteed"]})
    assert score_task(checked, GOLD, EVEN).correctness == 100
    assert score_task(checked, GOLD + " Success is guaranteed.", EVEN).correctness == 0
    schema = task(format="json", gold_answer='{"years": 6}', requirements=[],
                  checks={"json_schema": {"type": "object", "required": ["years"]}})
    assert score_task(schema, '{"years": 6}', EVEN).correctness == 100
    assert score_task(schema, '{"months": 72}', EVEN).failed == ["json_schema"]


def test_python_tests_count_only_when_the_sandbox_says_they_passed():
    coded = task(format="python", gold_answer="```python\nx = 1\n```", requirements=[],
                 checks={"python_tests": "assert x == 1"})
    assert score_task(coded, coded.gold_answer, EVEN, tests_passed=True).correctness == 100
    assert score_task(coded, coded.gold_answer, EVEN, tests_passed=False).failed == ["python_tests"]
    assert score_task(coded, coded.gold_answer, EVEN, tests_passed=None).correctness == 0


def test_a_truncated_answer_loses_completeness():
    full = score_task(task(), GOLD, EVEN).completeness
    short = score_task(task(), "Six years.", EVEN).completeness
    assert full == 100 and short < 60


def test_the_domain_weights_set_the_total():
    only_similarity = ScoringWeights(structure=0, correctness=0, similarity=1, completeness=0)
    answer = "The period is six years from the date of breach."
    assert score_task(task(), answer, only_similarity).total == pytest.approx(similarity(answer, GOLD), abs=0.01)


def test_summaries_average_per_category_and_per_component():
    scores = [score_task(task(id="a"), GOLD, EVEN), score_task(task(id="b", category="privacy"), "No idea", EVEN)]
    summary = summarize(scores)
    assert summary["categories"]["contracts"] == 100.0 and summary["categories"]["privacy"] < 30
    assert summary["score"] == pytest.approx((100 + scores[1].total) / 2, abs=0.01)
    assert summary["benchmark_tasks"] == 2 and set(summary["components"]) == {
        "structure", "correctness", "similarity", "completeness"}
