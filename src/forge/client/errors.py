"""What a failed call raises: the server's problem details (RFC 9457), or the router's OpenAI-shaped error."""

from __future__ import annotations

from typing import Any


class ForgeAPIError(Exception):
    """An error answer from Forge: `status`, `title`, `detail` (what to do) and the whole `problem` body."""

    def __init__(self, status: int, title: str, detail: str, problem: dict[str, Any] | None = None,
                 retry_after_s: float | None = None):
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail = status, title, detail
        self.problem = problem or {}
        self.retry_after_s = retry_after_s

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Each invalid field of a 422 (`field`, `message`)."""
        return list(self.problem.get("errors") or [])

    @classmethod
    def from_response(cls, status: int, body: Any, retry_after_s: float | None = None) -> "ForgeAPIError":
        if isinstance(body, dict) and isinstance(body.get("error"), dict):  # the router speaks OpenAI's shape
            error = body["error"]
            kind = _BY_STATUS.get(status, cls)
            return kind(status, str(error.get("type") or "error"), str(error.get("message") or ""), body,
                        retry_after_s)
        if isinstance(body, dict) and "title" in body:
            kind = _BY_STATUS.get(status, cls)
            return kind(status, str(body["title"]), str(body.get("detail") or ""), body, retry_after_s)
        text = body if isinstance(body, str) else ""
        return _BY_STATUS.get(status, cls)(status, "Error", text[:500] or f"HTTP {status}", None, retry_after_s)


class Unauthorized(ForgeAPIError):
    """401: no key, or an unknown or revoked one."""


class Forbidden(ForgeAPIError):
    """403: the key lacks a scope, or the operator did not open this to tenants."""


class NotFound(ForgeAPIError):
    """404: nothing of that id for this key's tenant."""


class Conflict(ForgeAPIError):
    """409: the object's state does not allow it now (the detail says what would)."""


class InvalidRequest(ForgeAPIError):
    """400, 413 or 422: the request itself is wrong; `errors` names each field."""


class RateLimited(ForgeAPIError):
    """429 after the retries: wait `retry_after_s`."""


class Unavailable(ForgeAPIError):
    """503 after the retries (storage or the engine is down), or a server error."""


_BY_STATUS: dict[int, type[ForgeAPIError]] = {400: InvalidRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
                                              409: Conflict, 413: InvalidRequest, 422: InvalidRequest,
                                              429: RateLimited, 500: Unavailable, 502: Unavailable,
                                              503: Unavailable}
