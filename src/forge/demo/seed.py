"""Generate teacher traces for a small learnable coding task, with the flaws real traffic has.

The task: twenty small Python functions (square, reverse a string, sum a list, …), each asked for in several
wordings. A tiny model can learn the mapping in minutes on a CPU; the `demo` domain's benchmark asks for the same
functions in a wording the traffic never uses, and runs the answers' code against tests.

Run it alone with `python -m forge.demo.seed OUT.jsonl [--count N] [--seed S]`.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any, Iterator

TEACHER = "gpt-4.1"
SYSTEM = "You are a senior software engineer."

# (function name, what it does, its body, a test the body passes)
FUNCTIONS = [
    ("square", "returns the square of a number", "return x * x", "assert square(3) == 9 and square(-2) == 4"),
    ("cube", "returns the cube of a number", "return x ** 3", "assert cube(2) == 8 and cube(-1) == -1"),
    ("double", "returns twice a number", "return 2 * x", "assert double(4) == 8 and double(0) == 0"),
    ("halve", "returns half of a number", "return x / 2", "assert halve(5) == 2.5"),
    ("negate", "returns a number with its sign flipped", "return -x", "assert negate(3) == -3 and negate(-1) == 1"),
    ("increment", "returns a number plus one", "return x + 1", "assert increment(9) == 10"),
    ("decrement", "returns a number minus one", "return x - 1", "assert decrement(0) == -1"),
    ("is_even", "tells whether a number is even", "return x % 2 == 0", "assert is_even(4) and not is_even(7)"),
    ("is_odd", "tells whether a number is odd", "return x % 2 == 1", "assert is_odd(7) and not is_odd(4)"),
    ("absolute", "returns the absolute value of a number", "return abs(x)", "assert absolute(-5) == 5"),
    ("reverse", "returns a string reversed", "return x[::-1]", "assert reverse('abc') == 'cba'"),
    ("shout", "returns a string in upper case", "return x.upper()", "assert shout('hi') == 'HI'"),
    ("whisper", "returns a string in lower case", "return x.lower()", "assert whisper('Hi') == 'hi'"),
    ("length", "returns the length of a sequence", "return len(x)", "assert length('abcd') == 4 and length([]) == 0"),
    ("first", "returns the first item of a list", "return x[0]", "assert first([7, 8]) == 7"),
    ("last", "returns the last item of a list", "return x[-1]", "assert last([7, 8]) == 8"),
    ("total", "returns the sum of a list of numbers", "return sum(x)", "assert total([1, 2, 3]) == 6"),
    ("largest", "returns the largest item of a list", "return max(x)", "assert largest([3, 9, 2]) == 9"),
    ("smallest", "returns the smallest item of a list", "return min(x)", "assert smallest([3, 9, 2]) == 2"),
    ("sort_items", "returns the items of a list in sorted order", "return sorted(x)",
     "assert sort_items([3, 1, 2]) == [1, 2, 3]"),
]
TRAFFIC_WORDINGS = [
    "Write a Python function named `{name}` that {does}.",
    "In Python, write `{name}`, a function that {does}.",
    "I need a Python function called `{name}` which {does}.",
    "Please implement `{name}` in Python: it {does}.",
]
BENCHMARK_WORDING = "Implement the Python function `{name}`; it {does}."  # never seen in traffic


def answer(name: str, does: str, body: str) -> str:
    return f"```python\ndef {name}(x):\n    {body}\n```\n`{name}` {does}: it takes one argument `x`."


def good_trace(rng: random.Random, i: int) -> dict[str, Any]:
    name, does, body, _ = rng.choice(FUNCTIONS)
    prompt = rng.choice(TRAFFIC_WORDINGS).format(name=name, does=does)
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": answer(name, does, body)},
        ],
        "model": TEACHER,
        "score": rng.randint(90, 100),
        "conversation_id": f"demo-{i // 2}",
        "metadata": {"function": name},
    }


def traces(count: int, seed: int) -> Iterator[str]:
    """`count` JSONL lines: mostly golden, some low-scored, rejected, refusing, leaking PII, or malformed."""
    rng = random.Random(seed)
    for i in range(count):
        record = good_trace(rng, i)
        roll = rng.random()
        if roll < 0.01:
            yield json.dumps(record)[: rng.randint(10, 60)]  # a truncated line, as a crashed logger leaves
            continue
        if roll < 0.02:
            record["messages"] = record["messages"][:-1]  # the answer never arrived
        elif roll < 0.12:
            record["score"] = rng.randint(20, 85)
        elif roll < 0.16:
            record["feedback"] = "rejected"
        elif roll < 0.19:
            record["messages"][-1]["content"] = "I'm sorry, but I can't help with that request."
        elif roll < 0.21:
            record["messages"][1]["content"] += " Send it to jane.doe@example.com when done."
        elif roll < 0.25:
            record.pop("score")
            record["feedback"] = "approved"
        yield json.dumps(record)


def benchmark_tasks() -> Iterator[dict[str, Any]]:
    """The `demo` domain's benchmark: every function once, in the unseen wording, checked by running its code."""
    for i, (name, does, body, test) in enumerate(FUNCTIONS):
        yield {
            "id": f"demo-{i + 1:03d}",
            "category": "numbers" if i < 10 else "strings" if i < 14 else "lists",
            "prompt": BENCHMARK_WORDING.format(name=name, does=does),
            "requirements": [f"def {name}\\("],
            "gold_answer": answer(name, does, body),
            "format": "python",
            "checks": {"python_tests": test + "\n"},
        }


def write(path: Path, count: int = 400, seed: int = 7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for line in traces(count, seed):
            handle.write(line + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(write(args.out, args.count, args.seed))


if __name__ == "__main__":
    main()
