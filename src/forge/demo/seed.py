"""Generate teacher traces for a small learnable coding task, with the flaws real traffic has.

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

# (name, template of the function body, words for the explanation)
OPERATIONS = [
    ("add_{n}", "return x + {n}", "adds {n} to its argument"),
    ("times_{n}", "return x * {n}", "multiplies its argument by {n}"),
    ("minus_{n}", "return x - {n}", "subtracts {n} from its argument"),
    ("power_{n}", "return x ** {n}", "raises its argument to the power {n}"),
    ("mod_{n}", "return x % {n}", "returns the remainder of its argument divided by {n}"),
    ("repeat_{n}", "return str(x) * {n}", "repeats the text of its argument {n} times"),
]


def good_trace(rng: random.Random, i: int) -> dict[str, Any]:
    name, body, words = rng.choice(OPERATIONS)
    n = rng.randint(2, 99)
    fn = name.format(n=n)
    prompt = f"Write a Python function named `{fn}` that {words.format(n=n)}."
    answer = (
        f"```python\ndef {fn}(x):\n    {body.format(n=n)}\n```\n"
        f"`{fn}` {words.format(n=n)}: it takes one argument `x` and returns the result."
    )
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": answer},
        ],
        "model": TEACHER,
        "score": rng.randint(90, 100),
        "conversation_id": f"demo-{i // 2}",
        "metadata": {"task": name.split("_")[0]},
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
