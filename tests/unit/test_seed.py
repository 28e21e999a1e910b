import json

from forge.demo.seed import traces


def test_the_demo_traffic_is_reproducible_and_has_the_flaws_real_traffic_has():
    first, second = list(traces(500, seed=3)), list(traces(500, seed=3))
    assert first == second
    broken = 0
    for line in first:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            broken += 1
    assert 1 <= broken <= 15
    records = [json.loads(line) for line in first if line.endswith("}")]
    assert any(r.get("feedback") == "rejected" for r in records)
    assert any(r.get("score", 100) < 90 for r in records)
