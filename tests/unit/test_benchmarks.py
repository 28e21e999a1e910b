"""Packaged benchmark suites and the task file format: every bad line is refused with its number."""

import json

import pytest

from forge.domain.benchmarks import BenchmarkInvalid, parse_benchmark
from forge.domain_templates import load_domains
from forge.evaluation.benchmarks import load_benchmark
from forge.domain.scoring import score_task

DOMAINS = ["coding", "legal", "healthcare", "finance", "education", "demo"]


def task_line(**fields):
    task = {"id": "t-1", "category": "c", "prompt": "p", "gold_answer": "g", **fields}
    return json.dumps(task)


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_domain_ships_at_least_fifteen_tasks_with_unique_ids_and_several_categories(domain):
    tasks = load_benchmark(domain)
    assert len(tasks) >= 15
    assert len({t.id for t in tasks}) == len(tasks)
    assert len({t.category for t in tasks}) >= 3


@pytest.mark.parametrize("domain", ["legal", "healthcare", "finance", "education"])
def test_every_gold_answer_scores_full_marks_on_its_own_rubric(domain):
    weights = load_domains()[domain].scoring
    for task in load_benchmark(domain):
        score = score_task(task, task.gold_answer, weights)
        assert (task.id, score.total, score.failed) == (task.id, 100.0, [])


def test_coding_tasks_are_python_with_tests_and_other_domains_mix_in_json_checks():
    assert all(t.format == "python" and t.checks.python_tests for t in load_benchmark("coding"))
    for domain in ["legal", "healthcare", "finance", "education"]:
        assert any(t.format == "json" and t.checks.json_schema for t in load_benchmark(domain))


def test_a_line_that_is_not_json_is_named_with_its_number():
    lines = [task_line(id="a"), "", "{oops"]
    with pytest.raises(BenchmarkInvalid, match=r"bench\.jsonl line 3 is not valid JSON"):
        parse_benchmark(lines, "bench.jsonl")


@pytest.mark.parametrize("fields, problem", [
    ({"gold_answer": None}, "gold_answer"),
    ({"requirements": ["(unclosed"]}, "does not compile"),
    ({"checks": {"python_tests": "assert (", "regex": []}, "format": "python"}, "syntax error"),
    ({"checks": {"python_tests": "assert solve(2) == 4"}}, "format 'python'"),  # python tests on a non-python task
    ({"checks": {"json_schema": {"type": "no-such-type"}}}, "not a valid JSON Schema"),
    ({"checks": {"shell": "rm -rf /"}}, "checks.shell"),
])
def test_a_task_that_breaks_the_format_is_refused_naming_the_line_and_the_field(fields, problem):
    with pytest.raises(BenchmarkInvalid) as caught:
        parse_benchmark([task_line(id="ok"), task_line(**fields)], "mine.jsonl")
    assert "mine.jsonl line 2" in str(caught.value) and problem in str(caught.value)


def test_a_repeated_id_and_an_empty_file_are_refused():
    with pytest.raises(BenchmarkInvalid, match="line 2 repeats task id 't-1' from line 1"):
        parse_benchmark([task_line(), task_line()], "x")
    with pytest.raises(BenchmarkInvalid, match="holds no tasks"):
        parse_benchmark(["", "  "], "x")


def test_a_users_benchmark_replaces_the_packaged_one_and_a_bad_one_names_its_line(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    path = tmp_path / "benchmarks" / "coding.jsonl"
    path.write_text(task_line(id="mine") + "\n")
    assert [t.id for t in load_benchmark("coding", tmp_path)] == ["mine"]
    path.write_text(task_line(id="mine") + "\n" + '{"id": "x"}\n')
    with pytest.raises(BenchmarkInvalid, match=f"{path} line 2"):
        load_benchmark("coding", tmp_path)


def test_a_domain_without_a_benchmark_says_where_to_put_one(tmp_path):
    with pytest.raises(BenchmarkInvalid, match=r"No benchmark for domain 'astrology'.*benchmarks/astrology\.jsonl"):
        load_benchmark("astrology", tmp_path)
