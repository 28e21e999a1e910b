"""Which conversations an eval set holds out: stratified, seeded, bounded by its size and share of new traffic."""

from collections import Counter

import pytest
from pydantic import ValidationError

from forge.domain.evalsets import choose, conversation, stratum_of, wanted
from forge.domain.stats import paired_bootstrap
from forge.domain.tasks import EvalSetRules, TaskRules
from tests.factories import make_trace


def test_each_stratum_is_held_out_in_proportion_and_a_small_one_is_not_left_out():
    strata = {f"b{i}": "billing" for i in range(60)} | {f"s{i}": "shipping" for i in range(36)} | {"a0": "account"}
    picked = choose(strata, 20, seed=0)
    by = Counter(strata[g] for g in picked)
    assert len(picked) == len(set(picked)) == 20
    assert by == {"billing": 12, "shipping": 7, "account": 1}


def test_the_same_traffic_and_seed_pick_the_same_conversations_and_another_seed_others():
    strata = {f"c{i}": "all" for i in range(100)}
    assert choose(strata, 10, seed=3) == choose(dict(reversed(strata.items())), 10, seed=3)
    assert choose(strata, 10, seed=3) != choose(strata, 10, seed=4)


def test_the_set_grows_by_at_most_its_share_of_new_conversations_until_it_is_full():
    rules = EvalSetRules(size=50, max_share=0.2)
    assert wanted(rules, current=0, candidates=100) == 20
    assert wanted(rules, current=40, candidates=100) == 10  # only up to its size
    assert wanted(rules, current=50, candidates=1000) == 0  # full: frozen
    assert wanted(rules, current=0, candidates=4) == 0  # a fifth of four is no conversation


def test_a_classification_domain_is_stratified_by_the_teachers_label_and_others_by_metadata_category():
    rules, task = EvalSetRules(), TaskRules(type="classification", parse=r"team:\s*(\w+)")
    labelled = make_trace("t", "support", response={"role": "assistant", "content": "team: Billing"})
    assert stratum_of(rules, task, labelled) == "billing"
    tagged = make_trace("t", "support", metadata={"category": "refunds"})
    assert stratum_of(rules, TaskRules(), tagged) == "refunds"
    assert stratum_of(EvalSetRules(stratify_by="none"), task, labelled) == "all"
    with pytest.raises(ValidationError, match="must be auto, task, none or metadata.KEY"):
        EvalSetRules(stratify_by="whatever")


def test_turns_of_one_conversation_are_one_conversation():
    first = make_trace("t", "support", conversation_id="c-1")
    later = make_trace("t", "support", conversation_id="c-1", messages=[{"role": "user", "content": "and then?"}])
    assert conversation(first) == conversation(later) != conversation(make_trace("t", "support"))


def test_the_paired_bootstrap_bounds_the_mean_difference_and_is_reproducible():
    same = paired_bootstrap([0.0] * 30, 0.95)
    assert (same.mean, same.lower, same.upper) == (0.0, 0.0, 0.0)
    noisy = paired_bootstrap([10.0, -8.0] * 15, 0.95)
    assert noisy.lower < noisy.mean == 1.0 < noisy.upper and noisy == paired_bootstrap([10.0, -8.0] * 15, 0.95)
    assert paired_bootstrap([], 0.95) is None
