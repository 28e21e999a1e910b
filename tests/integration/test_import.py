import io
import json

import pytest

from forge.domain.errors import DomainNotFound
from forge.domain_templates import load_domains
from forge.services.traces import Reject, count_golden, import_jsonl
from tests.factories import chat_line

DOMAINS = load_domains()


def run_import(storage, tenant, text: str, domain: str = "coding"):
    rejects: list[Reject] = []
    summary = import_jsonl(storage, io.BytesIO(text.encode()), tenant=tenant, domain=domain, known_domains=DOMAINS,
                           on_reject=rejects.append)
    return summary, rejects


def test_bad_lines_are_skipped_and_reported_with_their_line_numbers(storage, tenant):
    lines = [chat_line(i, score=95) for i in range(300)]
    lines[9] = '{"messages": [truncated'
    lines[150] = json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
    lines[299] = chat_line(score=300)
    lines.insert(20, "")  # blank lines are neither traces nor rejects
    summary, rejects = run_import(storage, tenant, "\n".join(lines) + "\n")
    assert summary.imported == 297 and summary.rejected_total == 3
    assert [(r.line, r.reason) for r in rejects] == [(10, "invalid_json"), (152, "no_assistant_response"),
                                                      (301, "bad_score")]
    assert dict(summary.rejected) == {"invalid_json": 1, "no_assistant_response": 1, "bad_score": 1}
    assert count_golden(storage, tenant, "coding", 90).golden == 297


def test_lines_may_name_their_own_domain_but_only_a_configured_one(storage, tenant):
    text = "\n".join([chat_line(domain="legal"), chat_line(domain="astrology"), chat_line()])
    summary, rejects = run_import(storage, tenant, text)
    assert summary.imported == 2 and [r.reason for r in rejects] == ["unknown_domain"]
    assert count_golden(storage, tenant, "legal", 90).total == 1


def test_importing_into_an_unknown_domain_fails_before_reading(storage, tenant):
    with pytest.raises(DomainNotFound, match="coding"):
        run_import(storage, tenant, chat_line(), domain="astrology")


def test_golden_counts_follow_scores_and_feedback(storage, tenant):
    text = "\n".join([chat_line(score=95), chat_line(score=50), chat_line(feedback="approved"),
                      chat_line(score=99, feedback="rejected"), chat_line()])
    run_import(storage, tenant, text)
    counts = count_golden(storage, tenant, "coding", 90)
    assert (counts.total, counts.golden) == (5, 2)
