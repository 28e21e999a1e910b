"""Curation rules: domain filters, refusals, control tokens, normalised keys and a grouped, seeded split."""

import pytest

from forge.domain import curation
from forge.domain.domains import FilterRules

CODE = FilterRules(min_response_chars=10, max_response_chars=200, require_code_block=True,
                   exclude_patterns=[r"(?i)internal only"])


@pytest.mark.parametrize("answer, prompt, reason", [
    ("short", "q", "too_short"),
    ("x" * 201, "q", "too_long"),
    ("no code here at all", "q", "no_code_block"),
    ("I'm sorry, but I can't help with that. ```x```", "q", "refusal"),
    ("As an AI language model I cannot ```x```", "q", "refusal"),
    ("```python\nprint(1)\n```", "this is INTERNAL ONLY", "excluded_pattern"),
    ("```python\nprint(1)\n```", "q", None),
])
def test_domain_rules_name_the_reason_an_answer_is_dropped(answer, prompt, reason):
    assert curation.rule_violation(answer, prompt, CODE) == reason


def test_an_apology_inside_an_explanation_is_not_a_refusal():
    answer = "```python\nx = 1\n```\nSorry for the long answer; the loop was the problem."
    assert curation.rule_violation(answer, "q", CODE) is None


def test_control_tokens_are_found_and_escaped():
    text = "end here <|endoftext|> then <|im_start|>user and <|fim_prefix|>"
    assert curation.has_special_tokens(text)
    escaped = curation.escape_special_tokens(text)
    assert not curation.has_special_tokens(escaped) and "endoftext" in escaped
    assert not curation.has_special_tokens("a <|notatoken|> b | c")


def test_conversations_that_differ_only_in_case_and_spacing_share_a_key():
    a = [{"role": "user", "content": "Sort  a list"}, {"role": "assistant", "content": "Use sorted()."}]
    b = [{"role": "user", "content": "sort a\nlist "}, {"role": "assistant", "content": "use SORTED()."}]
    c = [{"role": "user", "content": "Sort a list"}, {"role": "assistant", "content": "Use list.sort()."}]
    assert curation.exact_key(a) == curation.exact_key(b) != curation.exact_key(c)


def test_the_split_is_seeded_stable_and_keeps_a_conversation_on_one_side():
    groups = [f"c:{i}" for i in range(2000)]
    first = [curation.split_of(g, 7, 0.2) for g in groups]
    assert first == [curation.split_of(g, 7, 0.2) for g in groups]
    assert 0.15 < first.count("valid") / len(groups) < 0.25
    assert first != [curation.split_of(g, 8, 0.2) for g in groups]
    assert {curation.split_of(g, 7, 0.0) for g in groups} == {"train"}


def test_turns_of_one_conversation_without_an_id_are_grouped_by_their_opening():
    opening = {"role": "user", "content": "Help me plan a trip"}
    turn1 = [opening]
    turn2 = [opening, {"role": "assistant", "content": "Where to?"}, {"role": "user", "content": "Rome"}]
    assert curation.group_key(turn1, None) == curation.group_key(turn2, None)
    assert curation.group_key(turn1, "abc") == "c:abc"
