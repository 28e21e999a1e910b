"""Webhook authenticity without I/O: Standard Webhooks signatures (checked against the openai SDK's own verifier)
and Event Grid envelopes in both schemas."""

from __future__ import annotations

import base64
import time

import openai
import pytest

from forge.domain.errors import InvalidInput
from forge.domain.webhooks import (RUN_STATUS_CHANGED, VALIDATION_EVENT, WebhookNotConfigured, WebhookRejected,
                                   grid_events, key_matches, sign, verify)

SECRET = "whsec_" + base64.b64encode(b"forge-test-secret-32-bytes-long!").decode()
BODY = b'{"id":"evt_1","type":"fine_tuning.job.succeeded","data":{"id":"ftjob-1"}}'


def headers(secret=SECRET, webhook_id="wh_1", at=None, body=BODY):
    at = int(time.time()) if at is None else at
    return {"webhook-id": webhook_id, "webhook-timestamp": str(at), "webhook-signature": sign(secret, webhook_id, at, body)}


def sdk_accepts(h, body=BODY, secret=SECRET) -> bool:
    try:
        openai.OpenAI(api_key="unused").webhooks.verify_signature(body, h, secret=secret)
    except openai.InvalidWebhookSignatureError:
        return False
    return True


def test_a_signature_made_with_the_secret_is_accepted_here_and_by_the_openai_sdk():
    h = headers()
    assert verify(SECRET, h, BODY, time.time()) == "wh_1"
    assert sdk_accepts(h)


def test_a_signature_made_with_another_secret_is_rejected_here_and_by_the_sdk():
    other = "whsec_" + base64.b64encode(b"someone-else").decode()
    h = headers(secret=other)
    with pytest.raises(WebhookRejected, match="FORGE_OPENAI_WEBHOOK_SECRET"):
        verify(SECRET, h, BODY, time.time())
    assert not sdk_accepts(h)


def test_a_body_changed_after_signing_is_rejected():
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(SECRET, headers(), BODY.replace(b"succeeded", b"failed"), time.time())


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_a_timestamp_more_than_five_minutes_away_is_rejected_even_when_signed(age):
    now = time.time()
    with pytest.raises(WebhookRejected, match="stale or replayed"):
        verify(SECRET, headers(at=int(now) - age), BODY, now)
    # The SDK reads its own clock: a stamp 301 s ahead is back inside its tolerance once a loaded machine lets
    # a second pass, so it is asked 30 s further out.
    assert not sdk_accepts(headers(at=int(time.time()) - age - (30 if age > 0 else -30)))


def test_one_matching_signature_among_several_is_enough_during_a_secret_rotation():
    h = headers()
    h["webhook-signature"] = "v1,bm90LWl0 " + h["webhook-signature"]
    assert verify(SECRET, h, BODY, time.time()) == "wh_1" and sdk_accepts(h)


@pytest.mark.parametrize("drop", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_delivery_missing_a_signature_header_is_rejected(drop):
    h = headers()
    del h[drop]
    with pytest.raises(WebhookRejected, match="Standard Webhooks"):
        verify(SECRET, h, BODY, time.time())


def test_a_secret_that_is_not_base64_says_to_copy_it_again():
    with pytest.raises(WebhookNotConfigured, match="copy it"):
        verify("whsec_***", headers(secret="plain"), BODY, time.time())


def test_shared_keys_compare_exactly():
    assert key_matches("k-1", "k-1") and not key_matches("k-1", "k-2") and not key_matches("k-1", None)


def test_event_grid_deliveries_parse_in_both_schemas():
    grid = grid_events([{"id": "1", "eventType": VALIDATION_EVENT, "data": {"validationCode": "abc"}}])
    cloud = grid_events({"id": "2", "type": RUN_STATUS_CHANGED, "specversion": "1.0", "data": {"runId": "r"}})
    assert [(e.id, e.type) for e in grid + cloud] == [("1", VALIDATION_EVENT), ("2", RUN_STATUS_CHANGED)]
    with pytest.raises(InvalidInput, match="eventType or type"):
        grid_events([{"data": {}}])


def test_a_signature_with_characters_outside_ascii_is_rejected_not_a_crash():
    h = headers()
    h["webhook-signature"] = "v1,é" + h["webhook-signature"]
    with pytest.raises(WebhookRejected):
        verify(SECRET, h, BODY, time.time())
