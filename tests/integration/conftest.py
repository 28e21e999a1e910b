"""Fixtures the canary and drift simulations share: the fake upstream (production, candidates, teacher, judge) over
real HTTP, and the real router in front of it as a tenant's key sees it."""

from __future__ import annotations

import httpx
import pytest

from forge.api.app import create_app
from forge.api.server import serving
from tests.fakes.canary_upstream import CanaryUpstream


@pytest.fixture(scope="module")
def canary_upstream():
    fake = CanaryUpstream()
    with serving(fake.app) as url:
        yield fake, url


@pytest.fixture
def live_router(forge, tenant):
    """The API and router of the module's `forge`, on 127.0.0.1, with a key of `tenant`."""
    key = forge.storage.keys.create(tenant, "live")[0]
    with serving(create_app(forge)) as url, httpx.Client(base_url=url, timeout=30,
                                                         headers={"Authorization": f"Bearer {key}"}) as client:
        yield client
