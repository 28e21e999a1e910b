"""Router errors in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`), so SDKs raise the usual
exceptions, and the checks that turn a malformed request body into one."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

from forge.domain.errors import ForgeError

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
         404: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error"}


class RouterError(ForgeError):
    """A router call that cannot be answered; `response()` is the OpenAI-shaped reply."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param

    def response(self) -> JSONResponse:
        body = {"error": {"message": str(self), "type": TYPES.get(self.status, "api_error"),
                          "param": self.param, "code": self.code}}
        headers = {"WWW-Authenticate": 'Bearer realm="forge"'} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


def bad_request(message: str, param: str | None = None) -> RouterError:
    return RouterError(400, message, code="invalid_request", param=param)


def parse_body(raw: bytes) -> dict[str, Any]:
    """The chat-completions request as a dict, or a 400 naming the first field that is wrong and how to fix it."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"The request body is not valid JSON ({exc}); send a JSON chat-completions request.")
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with 'model' and 'messages'.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required: use 'forge:{domain}' (GET /v1/models lists them).", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list of {role, content} objects.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"messages[{i}] must be an object with 'role' and 'content'.", f"messages.[{i}]")
        if not isinstance(message.get("role"), str) or message["role"] not in ROLES:
            raise bad_request(f"messages[{i}].role must be one of {', '.join(sorted(ROLES))} "
                              f"(got {message.get('role')!r}).", f"messages.[{i}].role")
    if not isinstance(body.get("stream", False), bool):
        raise bad_request("'stream' must be true or false.", "stream")
    return body
