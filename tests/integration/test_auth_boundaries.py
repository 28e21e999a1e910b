"""API keys at the edge, against Azurite: the router's key cache fails closed when storage is unreachable, a revoked
key stops within the TTL, storage errors are a 503 problem, and repeated bad keys from one address get 429."""

import asyncio

import httpx
import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from forge.api.app import create_app
from forge.api.limits import FailureLimit
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.serving.errors import RouterError
from forge.serving.router import Router
from forge.storage import Storage, StorageAccount
from tests.fakes.flaky_proxy import FlakyProxy

TTL = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def proxy(azurite):
    proxy = FlakyProxy(azurite.table_port, marker=b"", drops=0)  # relays everything until cut
    yield proxy
    proxy.close()


def cut(proxy: FlakyProxy) -> None:
    """Storage becomes unreachable: open connections are reset on their next request, new ones refused."""
    proxy.drops = 10**9
    proxy.close()


@pytest.fixture
def proxied_storage(azurite, proxy) -> Storage:
    """Storage whose Table service is reached through `proxy`, with no SDK retries (a failure is seen at once)."""
    connection = azurite.connection_string.replace(f":{azurite.table_port}/", f":{proxy.port}/")
    return Storage.open(StorageAccount(TableServiceClient.from_connection_string(connection, retry_total=0),
                                       BlobServiceClient.from_connection_string(connection, retry_total=0)))


@pytest.fixture
def router_settings(settings):
    return settings.model_copy(update={"api_key_ttl_s": TTL})


def statuses(router: Router, key: str, clock: Clock, steps) -> list[int]:
    """The status the router gives `key` after each step (a callable run first, e.g. moving the clock); 200: accepted."""
    async def scenario() -> list[int]:
        seen = []
        for step in steps:
            step()
            try:
                await router.authenticate(key)
                seen.append(200)
            except RouterError as exc:
                seen.append(exc.status)
        await router.aclose()
        return seen

    return asyncio.run(scenario())


def at(clock: Clock, elapsed: float):
    return lambda: setattr(clock, "now", 1000.0 + elapsed)


def test_a_cached_key_is_refused_once_storage_has_been_unreachable_for_twice_the_ttl(
        proxied_storage, proxy, router_settings, tenant):
    clock = Clock()
    router = Router(proxied_storage, router_settings, ["coding"], clock=clock)
    key = proxied_storage.keys.create(tenant, "router")[0]
    elapsed = (TTL / 2, TTL, 1.5 * TTL, 2 * TTL - 0.1, 2 * TTL, 3 * TTL)
    seen = statuses(router, key, clock, [at(clock, 0), lambda: cut(proxy), *(at(clock, e) for e in elapsed)])
    # Trusted while storage last confirmed it under 2 × TTL ago; then refused as storage unreachable, though valid.
    assert seen == [200, 200, 200, 200, 200, 200, 503, 503]


def test_a_revoked_key_stops_working_on_the_router_within_the_ttl(storage, router_settings, tenant):
    clock = Clock()
    router = Router(storage, router_settings, ["coding"], clock=clock)
    key, record = storage.keys.create(tenant, "router")
    revoke = lambda: storage.keys.revoke(tenant, record.key_hash)  # noqa: E731
    assert statuses(router, key, clock, [at(clock, 0), revoke, at(clock, TTL)]) == [200, 200, 401]


def test_the_api_answers_a_503_problem_when_storage_cannot_check_a_key(proxied_storage, proxy, settings, tenant):
    key = proxied_storage.keys.create(tenant, "api")[0]
    app = create_app(bootstrap(settings, storage=proxied_storage))
    with serving(app) as url:
        assert httpx.get(f"{url}/api/v1/traces", headers={"X-API-Key": key}).status_code == 200
        cut(proxy)
        response = httpx.get(f"{url}/api/v1/traces", headers={"X-API-Key": key})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "storage is unreachable" in response.json()["detail"]


@pytest.fixture
def limited(settings, storage):
    """The app over real HTTP with a failure limit on a clock the test moves; clients from two loopback addresses."""
    clock = Clock()
    app = create_app(bootstrap(settings, storage=storage))
    app.state.auth_failures = FailureLimit(max_failures=10, window_s=60, clock=clock)
    with serving(app) as url:
        clients = [httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address=address))
                   for address in ("127.0.0.2", "127.0.0.3")]
        try:
            yield clock, *clients
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("surface", ["api", "router"])
def test_ten_bad_keys_from_one_address_get_it_429_with_retry_after_until_the_window_passes(
        limited, storage, tenant, surface):
    clock, attacker, other = limited
    good = storage.keys.create(tenant, "good")[0]
    bad = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    path = "/api/v1/traces" if surface == "api" else "/v1/models"

    def get(client: httpx.Client, key: str) -> httpx.Response:
        return client.get(path, headers={"Authorization": f"Bearer {key}"})

    assert [get(attacker, bad).status_code for _ in range(10)] == [401] * 10
    clock.now += 30
    refused = get(attacker, bad)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    if surface == "api":
        assert refused.headers["content-type"] == "application/problem+json"
    else:
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert get(attacker, good).status_code == 429  # refused before the key is looked at: no oracle for guesses
    assert get(other, good).status_code == 200 and get(other, bad).status_code == 401  # another address is its own
    clock.now += 30  # the first failures are a window old
    assert get(attacker, good).status_code == 200
