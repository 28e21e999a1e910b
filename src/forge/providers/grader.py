"""Grades unscored traces 0–100 with an LLM behind any OpenAI-compatible endpoint: concurrent, retried."""

from __future__ import annotations

import asyncio
import logging
from typing import Sequence

from forge.domain.content import content_text
from forge.domain.domains import DomainConfig
from forge.domain.grading import grading_messages, parse_score
from forge.domain.models import Trace
from forge.providers.inference import ChatClient, InferenceError

log = logging.getLogger("forge.grader")


class Grader:
    """Scores a batch of traces at once; the client bounds concurrency and retries 429/5xx."""

    def __init__(self, client: ChatClient, domain: DomainConfig, *, attempts: int = 2):
        self.client = client
        self.domain = domain
        self.attempts = attempts  # answers without a readable score are asked again this many times in all
        # One loop for the grader's life: the client's pooled connections belong to the loop that opened them.
        self._loop = asyncio.new_event_loop()

    def grade(self, traces: Sequence[Trace]) -> list[float | None]:
        """One score per trace (None where the grader failed or gave no score); never raises for one trace."""
        if not traces:
            return []
        return self._loop.run_until_complete(self._grade_all(traces))

    async def _grade_all(self, traces: Sequence[Trace]) -> list[float | None]:
        return list(await asyncio.gather(*(self._grade_one(t) for t in traces)))

    async def _grade_one(self, trace: Trace) -> float | None:
        body = {
            "messages": grading_messages(self.domain, trace.messages, content_text(trace.response.get("content"))),
            "temperature": 0,
            "max_tokens": 200,
        }
        for _ in range(self.attempts):
            try:
                completion = await self.client.complete(body)
            except InferenceError as exc:
                log.warning("grading %s failed: %s", trace.id, exc)
                return None
            choices = completion.get("choices") or [{}]
            score = parse_score(content_text((choices[0].get("message") or {}).get("content")))
            if score is not None:
                return score
        return None

    def close(self) -> None:
        self._loop.run_until_complete(self.client.aclose())
        self._loop.close()
