"""Put Message on the capture queue as one bare REST request, sent on the caller's own async connections.

The router puts one message per call. Through the Azure SDK that is a blocking request in a thread, behind a
pipeline of policies, XML models and `requests`: a millisecond or more of CPU per call, taken under the GIL from
the event loop that answers the next one. The REST call itself is small (Queue service, Put Message):

    POST {queue url}/messages?messagettl=-1
    <?xml version='1.0' encoding='utf-8'?>\\n<QueueMessage><MessageText>…</MessageText></QueueMessage>  → 201

signed the way the SDK signs it (azure.storage.queue._shared.authentication.SharedKeyCredentialPolicy: the verb,
eleven standard headers, the x-ms-* headers sorted, then /{account}{path} and the sorted query) for an account key
(a connection string, Azurite), or with `Authorization: Bearer` from the account's token credential (managed
identity, `az login`), or with the SAS of a connection string in the query. Any other credential: `for_account`
answers None and the caller keeps the SDK.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import time
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import httpx

from forge.storage.account import StorageAccount

STORAGE_SCOPE = "https://storage.azure.com/.default"
REFRESH_BEFORE_S = 300  # a token is renewed this long before it expires, so no call waits for a fresh one
CONTENT_TYPE = "application/xml"
SIGNED_HEADERS = ("content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
                  "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range")
TIMEOUTS = {"connect": 2.0, "read": 5.0, "write": 5.0, "pool": 2.0}


class QueueRefused(Exception):
    """The queue answered something other than 201; `code` is its x-ms-error-code (no URL, no body: no secrets)."""

    def __init__(self, status: int, code: str | None):
        super().__init__(f"the capture queue answered {status}" + (f" ({code})" if code else ""))
        self.status, self.code = status, code

    @property
    def queue_missing(self) -> bool:
        return self.status == 404 and self.code == "QueueNotFound"


class MessagePut:
    def __init__(self, queue_url: str, api_version: str, *, account_name: str | None = None,
                 account_key: str | None = None, token_credential: Any = None, sas: str = ""):
        parts = urlsplit(queue_url)
        self.path = parts.path.rstrip("/") + "/messages"
        self.origin = f"{parts.scheme}://{parts.netloc}"
        sas = sas.lstrip("?")  # a SAS travels in the query as the connection string gave it
        self.url = f"{self.origin}{self.path}?messagettl=-1" + (f"&{sas}" if sas else "")
        self.api_version = api_version
        self.account_name = account_name
        self._key = base64.b64decode(account_key) if account_key else None
        self._resource = f"/{account_name}{unquote(self.path)}\nmessagettl:-1" if account_name else ""
        self._credential = token_credential
        self._token: tuple[str, float] | None = None  # (token, expires_on)
        self._renewing: asyncio.Lock | None = None
        self._date: tuple[int, str] = (0, "")

    @classmethod
    def for_account(cls, account: StorageAccount, queue: str) -> "MessagePut | None":
        """The put for `account`'s queue, or None when its credential is one this module does not sign for."""
        client = account.queues.get_queue_client(queue)
        url, _, sas = client.url.partition("?")
        credential = account.queues.credential
        version = account.queues.api_version
        if credential is None:
            return cls(url, version, sas=sas)
        if hasattr(credential, "account_key") and hasattr(credential, "account_name"):  # the SDK's SharedKey policy
            return cls(url, version, account_name=credential.account_name, account_key=credential.account_key)
        if hasattr(credential, "named_key"):  # AzureNamedKeyCredential
            name, key = credential.named_key
            return cls(url, version, account_name=name, account_key=key)
        if hasattr(credential, "signature"):  # AzureSasCredential
            return cls(url, version, sas=credential.signature)
        if hasattr(credential, "get_token"):
            return cls(url, version, token_credential=credential)
        return None

    async def send(self, transport: httpx.AsyncBaseTransport, text: str) -> None:
        """Put `text` (base64, no XML escaping needed, escaped all the same) on the queue; QueueRefused if not 201."""
        body = _body(text)
        request = httpx.Request("POST", self.url, content=body, headers=await self.headers(len(body)),
                                extensions={"timeout": TIMEOUTS})
        response = await transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        if response.status_code != 201:
            raise QueueRefused(response.status_code, response.headers.get("x-ms-error-code"))

    async def headers(self, length: int) -> dict[str, str]:
        headers = {"x-ms-date": self._now(), "x-ms-version": self.api_version, "content-type": CONTENT_TYPE,
                   "content-length": str(length), "accept": CONTENT_TYPE}
        if self._key is not None:
            headers["authorization"] = f"SharedKey {self.account_name}:{self.signature(headers)}"
        elif self._credential is not None:
            headers["authorization"] = f"Bearer {await self._bearer()}"
        return headers

    def signature(self, headers: dict[str, str]) -> str:
        """SharedKey over the verb, the standard headers, the x-ms-* headers (sorted) and the resource."""
        assert self._key is not None
        standard = "\n".join(headers.get(name, "") for name in SIGNED_HEADERS)
        ms = "".join(f"{name}:{headers[name]}\n" for name in sorted(h for h in headers if h.startswith("x-ms-")))
        text = f"POST\n{standard}\n{ms}{self._resource}"
        return base64.b64encode(hmac.new(self._key, text.encode(), hashlib.sha256).digest()).decode()

    def _now(self) -> str:
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, formatdate(second, usegmt=True))
        return self._date[1]

    async def _bearer(self) -> str:
        if self._token is None or self._token[1] - time.time() < REFRESH_BEFORE_S:
            self._renewing = self._renewing or asyncio.Lock()
            async with self._renewing:
                if self._token is None or self._token[1] - time.time() < REFRESH_BEFORE_S:
                    get_token = self._credential.get_token
                    if inspect.iscoroutinefunction(get_token):  # an azure.identity.aio credential
                        got = await get_token(STORAGE_SCOPE)
                    else:  # the sync one blocks on the identity endpoint: off the loop, then
                        got = await asyncio.to_thread(get_token, STORAGE_SCOPE)
                    self._token = (got.token, float(got.expires_on))
        return self._token[0]


def _body(text: str) -> bytes:
    return (f"<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>{escape(text)}</MessageText>"
            "</QueueMessage>").encode()
