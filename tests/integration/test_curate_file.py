"""The streaming curation core over a file: bad input becomes rejects, and what it keeps is clean."""

import json
import re

from forge import tokens
from forge.domain import pii
from forge.domain_templates import load_domains
from forge.curation import sources as trace_sources
from forge.curation.curator import Curator, CurationOptions
from tests.factories import varied_lines, varied_record

MODEL = "gpt-4.1-mini-2025-04-14"


def run(tmp_path, lines: list[bytes], **options):
    source = tmp_path / "traces.jsonl"
    tmp_path.mkdir(parents=True, exist_ok=True)
    source.write_bytes(b"\n".join(lines) + b"\n")
    domain = load_domains()[options.pop("domain", "coding")]
    encoding = tokens.encoding(tokens.encoding_name_for_model(MODEL), home=tmp_path)
    curator = Curator(CurationOptions(domain=domain, model=MODEL, **options), tmp_path / "out",
                      count=lambda text: len(encoding.encode_ordinary(text)))
    outcome = curator.run(trace_sources.from_file(str(source), tenant="t", domain=domain.name)())
    files = {name: [json.loads(x) for x in (tmp_path / "out" / f"{name}.jsonl").read_text().splitlines()]
             for name in ("train", "valid", "rejects")}
    return outcome, files


def openai_format_errors(example) -> list[str]:
    """An independent check, written from OpenAI's cookbook, not from Forge's validator."""
    if not isinstance(example, dict):
        return ["data_type"]
    messages = example.get("messages")
    if not messages:
        return ["missing_messages_list"]
    errors = []
    for m in messages:
        if "role" not in m or "content" not in m:
            errors.append("message_missing_key")
        if any(k not in ("role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id")
               for k in m):
            errors.append("message_unrecognized_key")
        if m.get("role") not in ("system", "user", "assistant", "function", "tool"):
            errors.append("unrecognized_role")
        content = m.get("content")
        if (not content or not isinstance(content, str)) and not m.get("function_call") and not m.get("tool_calls"):
            errors.append("missing_content")
    if not any(m.get("role") == "assistant" for m in messages):
        errors.append("example_missing_assistant_message")
    return errors


PII_SAMPLES = ["mail ann@corp.example.com", "card 4111 1111 1111 1111", "iban DE89 3704 0044 0532 0130 00",
               "ssn 123-45-6789", "ip 192.168.1.20", "key sk-" + "a1B2" * 8, "aws AKIAIOSFODNN7EXAMPLE",
               "gh ghp_" + "x9Y8" * 9, "phone +44 20 7946 0958",
               "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_Xg"]


def test_a_built_dataset_is_valid_pii_free_and_shares_no_conversation_between_train_and_valid(tmp_path):
    lines = [line.encode() for line in varied_lines(120)]
    for i, sample in enumerate(PII_SAMPLES):  # PII in prompts and answers, redacted by the coding domain's policy
        record = varied_record(500 + i, conversation_id=f"conv-{i}")  # turns of conversations seen above
        record["messages"][0]["content"] += f" Also {sample}."
        lines.append(json.dumps(record).encode())
    lines += [json.dumps(varied_record(i)).encode() for i in range(5)]  # exact duplicates
    outcome, files = run(tmp_path, lines, valid_share=0.25, seed=3)
    kept = files["train"] + files["valid"]
    assert len(kept) == 120 + len(PII_SAMPLES)
    assert all(openai_format_errors(example) == [] for example in kept)
    text = json.dumps(kept)
    assert all(not pii.find(m["content"]) for e in kept for m in e["messages"])
    assert "ann@corp.example.com" not in text and "4111 1111" not in text and "AKIA" not in text
    assert set(outcome.stats.pii) == {"email", "credit_card", "iban", "ssn", "ip_address", "api_key", "phone", "jwt"}
    assert outcome.stats.dropped["duplicate"] == 5
    tasks = lambda examples: {re.search(r"Task (\d+)", e["messages"][1]["content"]).group(1) for e in examples}
    conversation = lambda task: f"conv-{int(task) - 500 if int(task) >= 500 else task}"
    assert not {conversation(t) for t in tasks(files["train"])} & {conversation(t) for t in tasks(files["valid"])}
    assert files["train"][0]["messages"][0]["role"] == "system"  # the domain's system prompt


def test_every_kind_of_bad_input_becomes_a_reject_with_a_reason_and_nothing_earlier_is_lost(tmp_path):
    good = [line.encode() for line in varied_lines(12)]
    bad = [
        b"{not json",
        b'{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "x"}]}',
        b"\xef\xbb\xbf" + good[0],  # a BOM inside the file
        b'["a", "list"]',
        b'{"messages": "not a list"}',
        json.dumps({"messages": [{"role": "wizard", "content": "q"}, {"role": "assistant", "content": "```a```"}],
                    "score": 99}).encode(),
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}],
                    "score": 99}).encode(),
        json.dumps(varied_record(904, messages=[{"role": "user", "content": " "},
                                                varied_record(904)["messages"][1]])).encode(),
        json.dumps({**varied_record(900), "score": "high"}).encode(),
        json.dumps(varied_record(901, messages=[
            {"role": "user", "content": "word " * 70_000},
            {"role": "assistant", "content": "```python\nprint(\"done\")\n```"}])).encode(),
        b'{"prompt": "' + b"x" * (50 * 1024 * 1024) + b'"}',  # a 50 MB line
        json.dumps(varied_record(902, score=40)).encode(),
        json.dumps(varied_record(903, feedback="rejected")).encode(),
        json.dumps(varied_record(905, messages=[{"role": "user", "content": "q", "name": 5},
                                                varied_record(905)["messages"][1]])).encode(),
    ]
    outcome, files = run(tmp_path, [b"\xef\xbb\xbf" + good[0], *good[1:6], *bad, *good[6:]])
    reasons = {r["line"]: r["reason"] for r in files["rejects"]}
    assert [reasons[n] for n in range(7, 21)] == [
        "invalid_json", "invalid_json", "bom", "not_an_object", "no_messages", "bad_message", "too_short",
        "missing_content", "bad_score", "over_token_limit", "too_large", "below_min_score", "rejected_feedback",
        "bad_message",
    ]
    assert len(files["train"]) + len(files["valid"]) == 12  # a BOM opening the file is not data
    assert outcome.stats.read == 26 and sum(outcome.stats.dropped.values()) == 14
    assert all("content" not in r and "messages" not in r for r in files["rejects"])  # reasons, never the data


def test_control_tokens_follow_the_domain_policy(tmp_path):
    record = varied_record(1)
    record["messages"][1]["content"] += " <|endoftext|>"
    lines = [json.dumps(record).encode(), *[x.encode() for x in varied_lines(11, start=2)]]
    _, dropped = run(tmp_path / "drop", lines)
    assert [r["reason"] for r in dropped["rejects"]] == ["special_tokens"]
    domain = load_domains()["coding"].model_copy(deep=True)
    domain.filters.special_tokens = "escape"
    source = tmp_path / "esc.jsonl"
    source.write_bytes(b"\n".join(lines))
    encoding = tokens.encoding(home=tmp_path)
    curator = Curator(CurationOptions(domain=domain, model=MODEL, valid_share=0), tmp_path / "esc",
                      count=lambda t: len(encoding.encode_ordinary(t)))
    curator.run(trace_sources.from_file(str(source), tenant="t", domain="coding")())
    assert "< |endoftext| >" in (tmp_path / "esc" / "train.jsonl").read_text()


def test_the_same_input_and_seed_give_the_same_files(tmp_path):
    lines = [x.encode() for x in varied_lines(40)]
    first, _ = run(tmp_path / "a", lines, seed=11)
    second, _ = run(tmp_path / "b", lines, seed=11)
    third, _ = run(tmp_path / "c", lines, seed=12)
    assert first.sha256 == second.sha256 != third.sha256
    assert first.estimate.billed_tokens == second.estimate.billed_tokens > 0


def test_a_drop_policy_domain_drops_traces_with_pii(tmp_path):
    record = varied_record(1)
    record["messages"][0]["content"] += " Patient email: p@clinic.example.org"
    lines = [json.dumps(record).encode(), *[x.encode() for x in varied_lines(3, start=2)]]
    outcome, files = run(tmp_path, lines, domain="legal", require_golden=False)
    assert outcome.stats.dropped["pii"] == 1 and outcome.stats.pii == {"email": 1}
    assert "p@clinic" not in json.dumps(files)


def test_a_file_build_honours_since_and_until(tmp_path):
    from datetime import datetime, timezone

    lines = [json.dumps(varied_record(i, created_at=f"2026-01-{i + 1:02d}T12:00:00Z")).encode() for i in range(20)]
    (tmp_path / "t.jsonl").write_bytes(b"\n".join(lines))
    source = trace_sources.from_file(str(tmp_path / "t.jsonl"), tenant="t", domain="coding",
                                     since=datetime(2026, 1, 5, tzinfo=timezone.utc),
                                     until=datetime(2026, 1, 15, tzinfo=timezone.utc))
    assert [item.number for item in source()] == list(range(5, 15))
