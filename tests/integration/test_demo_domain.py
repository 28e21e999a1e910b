"""The `demo` domain `forge demo` distils: its benchmark is generated from the same task family as its traffic."""

import json
from importlib import resources

from forge.demo.seed import benchmark_tasks
from forge.domain.scoring import code_blocks
from forge.evaluation.benchmarks import load_benchmark
from forge.evaluation.sandbox import run_python_tests


def test_the_packaged_demo_benchmark_is_what_the_generator_writes():
    packaged = resources.files("forge.domain_templates").joinpath("benchmarks/demo.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in packaged] == list(benchmark_tasks())


def test_every_demo_gold_answer_passes_its_tests_and_a_wrong_answer_fails_them():
    tasks = load_benchmark("demo")
    for task in tasks:
        run = run_python_tests("\n".join(code_blocks(task.gold_answer)), task.checks.python_tests)
        assert run.passed, (task.id, run.detail)
    wrong = tasks[0].gold_answer.replace("return ", "return 1 + ")
    assert not run_python_tests("\n".join(code_blocks(wrong)), tasks[0].checks.python_tests).passed
