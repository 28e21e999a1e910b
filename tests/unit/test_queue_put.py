"""The router's lean capture put (storage/queue_put.py) signs its requests exactly as the Azure SDK signs them."""

import asyncio
import time
from types import SimpleNamespace

from azure.core.credentials import AccessToken
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest
from azure.storage.queue._shared.authentication import SharedKeyCredentialPolicy

from forge.storage.queue_put import STORAGE_SCOPE, MessagePut

ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def sdk_signature(put: MessagePut, headers: dict[str, str], account: str) -> str:
    request = HttpRequest("POST", put.url, headers=headers)
    SharedKeyCredentialPolicy(account, ACCOUNT_KEY).on_request(PipelineRequest(request, PipelineContext(None)))
    return request.headers["Authorization"]


def test_a_put_to_azure_and_to_azurite_carries_the_same_shared_key_signature_the_sdk_computes():
    for url, account in (("https://acct.queue.core.windows.net/forge-traces", "acct"),
                         ("http://127.0.0.1:10001/devstoreaccount1/forge-traces", "devstoreaccount1")):
        put = MessagePut(url, "2026-10-06", account_name=account, account_key=ACCOUNT_KEY)
        headers = asyncio.run(put.headers(123))
        ours = headers.pop("authorization")
        assert ours == sdk_signature(put, headers, account)
        assert put.url.endswith("/forge-traces/messages?messagettl=-1")  # a message that never expires


class Credential:
    """A token credential as azure.identity's are: a token for a scope, with its expiry."""

    def __init__(self, lifetime_s: float):
        self.lifetime_s, self.scopes = lifetime_s, []

    def get_token(self, scope: str) -> AccessToken:
        self.scopes.append(scope)
        return AccessToken(f"token-{len(self.scopes)}", int(time.time() + self.lifetime_s))


def test_with_a_managed_identity_each_put_sends_a_cached_bearer_token_renewed_before_it_expires():
    lasting, expiring = Credential(3600), Credential(60)
    account = SimpleNamespace(queues=SimpleNamespace(
        credential=lasting, api_version="2026-10-06",
        get_queue_client=lambda name: SimpleNamespace(url=f"https://acct.queue.core.windows.net/{name}")))
    put = MessagePut.for_account(account, "forge-traces")
    assert put is not None

    async def two_puts(p: MessagePut) -> list[str]:
        return [(await p.headers(10))["authorization"] for _ in range(2)]

    assert asyncio.run(two_puts(put)) == ["Bearer token-1", "Bearer token-1"]  # one token for many calls
    assert lasting.scopes == [STORAGE_SCOPE]
    short = MessagePut("https://acct.queue.core.windows.net/forge-traces", "2026-10-06", token_credential=expiring)
    assert asyncio.run(two_puts(short)) == ["Bearer token-1", "Bearer token-2"]  # within 5 minutes of expiry


def test_a_sas_connection_string_puts_with_its_signature_in_the_query_and_no_authorization_header():
    put = MessagePut("https://acct.queue.core.windows.net/forge-traces", "2026-10-06", sas="?sv=2025-01-05&sig=a%2Bb")
    assert put.url == "https://acct.queue.core.windows.net/forge-traces/messages?messagettl=-1&sv=2025-01-05&sig=a%2Bb"
    assert "authorization" not in asyncio.run(put.headers(10))
