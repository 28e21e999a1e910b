"""Choosing production or canary: by weight, sticky per user or conversation, deterministic."""

from forge.domain.models import Route
from forge.domain.routing import bucket, choose, conversation_key, domain_of, sticky_key


def route(percent: float, **fields) -> Route:
    return Route(tenant="t", domain="coding", production_model="P", canary_model="C", canary_percent=percent, **fields)


def test_the_canary_share_over_10000_users_lies_within_one_point_of_its_weight():
    for percent in (5, 20, 50):
        arms = [choose(route(percent), f"u:user-{i}")[0] for i in range(10_000)]
        assert abs(arms.count("canary") / 100 - percent) < 1, percent


def test_the_same_key_always_gets_the_same_model_and_raising_the_share_keeps_canary_users_there():
    keys = [f"u:{i}" for i in range(2000)]
    at_10 = {k for k in keys if choose(route(10), k)[0] == "canary"}
    at_30 = {k for k in keys if choose(route(30), k)[0] == "canary"}
    assert at_10 < at_30
    assert all(choose(route(10), k) == choose(route(10), k) for k in keys[:100])
    assert bucket("coding", "u:ada") == bucket("coding", "u:ada") != bucket("legal", "u:ada")


def test_no_student_means_the_teacher_and_no_canary_means_production():
    assert choose(Route(tenant="t", domain="coding"), "u:x") == ("teacher", None)
    assert choose(Route(tenant="t", domain="coding", production_model="P"), "u:x") == ("production", "P")
    assert choose(route(100), "u:x") == ("canary", "C")


def test_a_user_is_the_sticky_key_and_a_caller_without_one_sticks_by_conversation():
    body = {"user": "ada", "messages": [{"role": "user", "content": "hi"}]}
    assert sticky_key(body, "user") == "u:ada"
    assert sticky_key(body, "conversation") == conversation_key(body)
    assert sticky_key({"messages": body["messages"]}, "user") == conversation_key(body)


def test_a_conversation_keeps_its_key_as_its_history_grows_and_an_explicit_id_wins():
    opening = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "plan a trip"}]
    later = {"messages": opening + [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "more"}]}
    assert conversation_key({"messages": opening}) == conversation_key(later)
    assert conversation_key({"messages": [{"role": "user", "content": "other"}]}) != conversation_key(later)
    assert conversation_key({**later, "metadata": {"conversation_id": "c1"}}) == "c:c1"
    assert conversation_key(later, header="c2") == "c:c2"


def test_the_domain_comes_from_the_header_or_the_forge_alias():
    assert domain_of("forge:legal", None) == "legal"
    assert domain_of("gpt-4.1", "finance") == "finance"
    assert domain_of("forge:legal", " coding ") == "coding"
    assert domain_of("gpt-4.1", None) is None and domain_of(None, "") is None
