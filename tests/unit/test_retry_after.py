"""One reading of an answer's wait for every client: milliseconds, seconds, an HTTP date, or nothing readable."""

from __future__ import annotations

import email.utils
import time

import httpx

from forge.client.core import Retry
from forge.domain.retry_after import seconds


def test_the_wait_is_read_from_milliseconds_seconds_or_a_date_and_never_negative():
    assert seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert seconds({"retry-after": "3"}) == 3.0 and seconds({"retry-after": "-3"}) == 0.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= seconds({"retry-after": later}) <= 30
    assert seconds({"retry-after": email.utils.formatdate(time.time() - 30, usegmt=True)}) == 0.0
    assert seconds({}) is None and seconds({"retry-after": "soon"}) is None


def test_the_sdk_backs_off_on_its_own_when_the_server_names_a_wait_it_cannot_read():
    answer = httpx.Response(503, headers={"Retry-After": "soon"})  # raised ValueError in the SDK before
    assert 0 < Retry(backoff_s=0.5).wait(0, answer) <= 0.5
