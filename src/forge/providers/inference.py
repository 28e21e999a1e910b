"""The one Protocol every chat model Forge calls implements: OpenAI chat-completions bodies in and out.

Clients: any OpenAI-compatible endpoint (Azure OpenAI deployment, OpenAI, vLLM, Ollama, the router itself) and a
local `transformers` + `peft` adapter on CPU. Evaluation, the judge, grading and the router all use them.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Protocol, runtime_checkable

from forge.domain.errors import ForgeError
from forge.domain.content import content_text


class InferenceError(ForgeError):
    """The model could not answer (error status, timeout, unreachable); callers may fall back or retry."""

    status = 502
    title = "Model call failed"

    def __init__(self, message: str, *, upstream_status: int | None = None, timed_out: bool = False):
        super().__init__(message)
        # What the upstream answered (None: no answer at all), so a router can pass a 4xx through or fall back.
        self.upstream_status = upstream_status
        self.timed_out = timed_out


@runtime_checkable
class ChatClient(Protocol):
    name: str  # the model this client answers as, e.g. "ft:gpt-4.1-mini:…" or a local adapter's version id

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """A `chat.completion` response for a chat-completions request body (its `model` may be ignored)."""
        ...

    def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """`chat.completion.chunk` objects for the same request with streaming on."""
        ...

    async def aclose(self) -> None:
        ...


def answer_text(completion: dict[str, Any]) -> str:
    """The assistant's text in a `chat.completion` (empty when it has none)."""
    choices = completion.get("choices") or [{}]
    return content_text((choices[0].get("message") or {}).get("content"))
