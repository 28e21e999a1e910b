"""Whom failed authentications are counted against, and the failure limit's window, without I/O."""

from starlette.requests import Request

from forge.api.auth import client_address
from forge.api.limits import FailureLimit


def request(client: tuple[str, int] | None, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "client": client})


def test_the_peer_address_counts_and_a_forwarded_for_header_cannot_move_it():
    assert client_address(request(("198.51.100.7", 4000), "203.0.113.1")) == "198.51.100.7"


def test_without_a_peer_the_last_forwarded_for_entry_counts_the_one_the_front_end_appended():
    assert client_address(request(None, "10.9.9.9, 203.0.113.5:51234")) == "203.0.113.5"
    assert client_address(request(None, "[2001:db8:1:2::9]:443")) == "2001:db8:1:2::/64"
    assert client_address(request(None)) == "unknown"


def test_ipv6_peers_are_counted_by_their_64_so_one_host_cannot_rotate_addresses():
    assert client_address(request(("2001:db8:1:2::1", 1))) == client_address(request(("2001:db8:1:2:ffff::2", 1)))


def test_a_client_is_refused_until_the_oldest_of_its_failures_leaves_the_window_and_memory_is_bounded():
    now = [0.0]
    limit = FailureLimit(max_failures=3, window_s=60, max_clients=2, clock=lambda: now[0])
    for t in (0, 10, 20):
        now[0] = t
        assert limit.retry_after("a") is None
        limit.fail("a")
    assert limit.retry_after("a") == 40 and limit.retry_after("b") is None
    now[0] = 60
    assert limit.retry_after("a") is None
    small = FailureLimit(max_failures=1, window_s=60, max_clients=2, clock=lambda: now[0])
    for client in "abc":  # a third client: the least recently failing one ("a") is forgotten
        small.fail(client)
    assert [small.retry_after(c) for c in "abc"] == [None, 60, 60]


def test_callers_without_any_address_are_never_locked_out_together():
    from forge.api.auth import counting_failures
    from forge.domain.errors import Unauthorized
    from starlette.applications import Starlette

    app = Starlette()
    for _ in range(20):  # far past the limit: no shared "unknown" bucket fills up
        anonymous = request(None)
        anonymous.scope["app"] = app
        anonymous.scope["headers"] = [(b"x-api-key", b"wrong")]
        try:
            with counting_failures(anonymous):
                raise Unauthorized("bad key")
        except Unauthorized:
            pass
    assert getattr(app.state, "auth_failures").retry_after("unknown") is None
