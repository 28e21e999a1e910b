"""The router behind `/v1/chat/completions`: picks production, canary or teacher per call, falls back to the teacher
when a student errors or is too slow, and records every call in the background.

Everything on the call path is async and in memory: routes and keys come from TTL caches, upstream clients are
made once per model and reused over one keep-alive pool per upstream, and traces leave through a bounded queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterable, Mapping

from forge.config import Settings
from forge.domain import routing
from forge.domain.errors import ForgeError, ModelNotFound
from forge.domain.models import ApiKey, ModelVersion, Route, utcnow
from forge.domain.traces import new_trace_id
from forge.providers.inference import ChatClient, InferenceError
from forge.providers.lora_server import LoRAServer
from forge.serving import streams
from forge.serving.cache import TtlCache
from forge.serving.errors import RouterError
from forge.serving.recorder import CallRecord, TraceRecorder
from forge.serving.transport import PooledTransport
from forge.storage import Storage

ClientFactory = Callable[[ModelVersion | str], ChatClient]  # a version (student) or a model name (the teacher)
TEACHER = "teacher"
log = logging.getLogger("forge.serving")


@dataclass(frozen=True)
class Plan:
    """A domain's route and the model versions it names."""

    route: Route
    versions: dict[str, ModelVersion] = field(default_factory=dict)


@dataclass
class Target:
    domain: str
    arm: routing.Arm
    version: ModelVersion | None
    user: str | None
    conversation_id: str | None
    created: datetime = field(default_factory=utcnow)  # when the call began: its trace id's time
    trace_id: str = ""  # the request id, minted with the call: `{domain}.{ULID}`, the trace it becomes

    def __post_init__(self) -> None:
        self.trace_id = self.trace_id or new_trace_id(self.domain, self.created)


@dataclass
class Answer:
    body: dict[str, Any]
    headers: dict[str, str]
    capture: Any = None  # awaitable: hands the call's trace to the capture queue; run once the answer is sent


@dataclass
class Stream:
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]


class Router:
    def __init__(self, storage: Storage, settings: Settings, domains: Iterable[str] | Callable[[str], Iterable[str]],
                 clients: ClientFactory | None = None, clock: Callable[[], float] = time.monotonic,
                 lora: LoRAServer | None = None):
        self.storage = storage
        self.settings = settings
        self.lora = lora  # LoRA students answer from it by adapter name; None: in-process with transformers
        # A tenant's domains (its own and the templates), read once per route TTL; or one fixed set for all.
        names = domains if callable(domains) else (lambda _tenant, fixed=frozenset(domains): fixed)
        self.domains: TtlCache[str, frozenset[str]] = TtlCache(lambda tenant: frozenset(names(tenant)),
                                                               settings.router_route_ttl_s)
        self._make_client = clients or self._default_client
        self._clients: dict[str, ChatClient] = {}
        self._transport = PooledTransport(max_idle=settings.router_concurrency)  # shared: one pool per upstream
        self.routes: TtlCache[tuple[str, str], Plan] = TtlCache(
            self._load_plan, settings.router_route_ttl_s, fallback=lambda key: Plan(Route(tenant=key[0], domain=key[1])))
        # Keys fail closed: reloaded in the background after half the TTL and before answering after the whole, so a
        # revoked key stops working within FORGE_API_KEY_TTL_S; while storage is unreachable a cached key is
        # trusted until twice the TTL after storage last confirmed it, then refused (503) like any other.
        key_ttl = settings.api_key_ttl_s
        self.keys: TtlCache[str, ApiKey | None] = TtlCache(storage.keys.authenticate, key_ttl / 2,
                                                           max_age_s=2 * key_ttl, clock=clock)
        self.recorder = TraceRecorder(storage, settings)  # hands each call to the durable capture queue
        self._pending: set[asyncio.Task[None]] = set()  # captures of streams whose caller left early

    async def authenticate(self, key: str | None, scope: str = "write") -> ApiKey:
        if not key:
            raise RouterError(401, "No API key: send your Forge key as 'Authorization: Bearer <key>' (the OpenAI SDK's "
                                   "api_key); `forge keys create` makes one.", code="invalid_api_key")
        try:
            record = await self.keys.get(key)
        except Exception:
            raise RouterError(503, "Forge cannot check API keys right now (storage unreachable); retry shortly.",
                              code="storage_unavailable") from None
        if record is None:
            raise RouterError(401, "This API key is unknown or revoked; create one with `forge keys create`.",
                              code="invalid_api_key")
        if scope not in record.scopes:
            raise RouterError(403, f"This key lacks the '{scope}' scope that model calls need; create one with it.",
                              code="insufficient_scope")
        return record

    async def aliases(self, tenant: str) -> list[str]:
        """`forge:{domain}` for each domain the tenant can call."""
        try:
            found = await self.domains.get(tenant)
        except Exception:
            raise RouterError(503, "Forge cannot read this tenant's domains right now (storage unreachable); retry "
                                   "shortly.", code="storage_unavailable") from None
        return [routing.alias(d) for d in sorted(found)]

    async def complete(self, tenant: str, body: dict[str, Any], headers: Mapping[str, str]) -> Answer:
        """A `chat.completion` from the routed model, or from the teacher when the student fails."""
        target = await self.target(tenant, body, headers)
        started, created = time.perf_counter(), target.created
        arm, reason, answer = target.arm, None, None
        if target.version is not None:
            try:
                async with asyncio.timeout(self.settings.router_timeout_s):
                    answer = await self._client(target.version).complete(body)
            except Exception as exc:
                arm, reason = "fallback", _why(exc, self.settings.router_timeout_s)
                log.warning("student %s failed (%s); the teacher answers", target.version.version_id, reason)
        if answer is None:
            answer = await self._teacher_call(lambda client: client.complete(body))
        message = ((answer.get("choices") or [{}])[0] or {}).get("message") or {}
        capture = self._record(tenant, target, arm, reason, body, message, answer.get("usage"), answer.get("model"),
                               started, created)
        return Answer(answer, self._headers(target, arm), capture)

    async def stream(self, tenant: str, body: dict[str, Any], headers: Mapping[str, str]) -> Stream:
        """SSE bytes passing the upstream's chunks through; fallback is possible until the first chunk arrives."""
        target = await self.target(tenant, body, headers)
        started, created = time.perf_counter(), target.created
        options = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
        wants_usage = options.get("include_usage") is True
        # Usage is asked for upstream so every trace has token counts; a caller who did not ask never sees it.
        upstream = body if wants_usage else {**body, "stream_options": {**options, "include_usage": True}}
        arm, reason, opened = target.arm, None, None
        if target.version is not None:
            try:
                opened = await streams.open_stream(self._client(target.version), upstream,
                                                   self.settings.router_timeout_s)
            except Exception as exc:
                arm, reason = "fallback", _why(exc, self.settings.router_timeout_s)
                log.warning("student %s failed (%s); the teacher answers", target.version.version_id, reason)
        if opened is None:
            opened = await self._teacher_call(lambda client: streams.open_stream(client, upstream, None))
        chunks, first = opened

        async def relay() -> AsyncIterator[bytes]:
            assembler, complete, recorded = streams.Assembler(), False, False
            try:
                chunk = first
                while chunk is not None:
                    assembler.add(chunk)
                    if wants_usage or chunk.get("choices") or not chunk.get("usage"):
                        yield streams.sse(chunk)
                    chunk = await anext(chunks, None)
                complete = True
                yield streams.DONE
                # Captured before the response ends (after [DONE], so the caller does not wait for it).
                await self._record(tenant, target, arm, reason, body, assembler.message(), assembler.usage,
                                   assembler.model, started, created)
                recorded = True
            except Exception as exc:  # mid-stream: too late to fall back, so the caller gets an error event
                error = exc if isinstance(exc, ForgeError) else RouterError(502, "The model's stream broke off.")
                yield streams.sse({"error": {"message": str(error), "type": "api_error", "param": None,
                                             "code": "upstream_error"}})
            finally:
                await streams.close(chunks)
                if complete and not recorded:  # the caller left after [DONE]: capture it all the same
                    self._pending.add(task := asyncio.get_running_loop().create_task(self._record(
                        tenant, target, arm, reason, body, assembler.message(), assembler.usage, assembler.model,
                        started, created)))
                    task.add_done_callback(self._pending.discard)

        return Stream(self._headers(target, arm), relay())

    async def target(self, tenant: str, body: dict[str, Any], headers: Mapping[str, str]) -> Target:
        """Which domain the call is for and which model answers it; 404 in OpenAI's shape for an unknown alias."""
        domain = routing.domain_of(body.get("model"), headers.get("x-forge-domain"))
        aliases = await self.aliases(tenant)
        if domain is None or routing.alias(domain) not in aliases:
            asked = headers.get("x-forge-domain") or body.get("model")
            raise RouterError(404, f"The model '{asked}' does not exist. Use one of {', '.join(aliases)} "
                                   "(GET /v1/models lists them) or name a domain in the X-Forge-Domain header.",
                              code="model_not_found", param="model")
        plan = await self.routes.get((tenant, domain))
        conversation = headers.get("x-forge-conversation")
        arm, version_id = routing.choose(plan.route, routing.sticky_key(body, plan.route.sticky_by, conversation))
        version = plan.versions.get(version_id) if version_id else None
        if version is None:
            arm = "teacher"
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        user = body.get("user") if isinstance(body.get("user"), str) else None
        return Target(domain, arm, version, user, conversation or metadata.get("conversation_id"))

    async def aclose(self) -> None:
        if self._pending:  # captures of streams whose caller left after [DONE]: finished before the recorder closes
            await asyncio.wait(list(self._pending), timeout=10)
        await self.recorder.aclose()
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.aclose()
            except Exception as exc:
                log.warning("closing %s failed (%s)", getattr(client, "name", "a client"), type(exc).__name__)
        await self._transport.aclose()

    def _client(self, model: ModelVersion | str) -> ChatClient:
        key = model.version_id if isinstance(model, ModelVersion) else f"{TEACHER}:{model}"
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._make_client(model)
        return client

    async def _teacher_call(self, call: Callable[[ChatClient], Any]) -> Any:
        try:
            return await call(self._client(self.settings.teacher_model))
        except InferenceError as exc:
            status = exc.upstream_status
            if status is not None and 400 <= status < 500 and status not in (401, 403, 408, 429):
                raise RouterError(status, str(exc), code="upstream_rejected") from None
            raise RouterError(502, f"The teacher could not answer: {exc}", code="upstream_error") from None
        except ForgeError as exc:  # e.g. no teacher endpoint configured
            raise RouterError(503, str(exc), code="not_configured") from None
        except Exception as exc:
            raise RouterError(502, f"The teacher could not answer ({type(exc).__name__}).", code="upstream_error") \
                from None

    async def _record(self, tenant: str, target: Target, arm: str, reason: str | None, body: dict[str, Any],
                      message: dict[str, Any], usage: Any, upstream_model: Any, started: float, created: Any) -> None:
        metadata: dict[str, Any] = {"route": arm, "requestedModel": body.get("model"), "upstreamModel": upstream_model}
        if reason:
            metadata.update(fallbackFrom=target.version.version_id if target.version else None, fallbackReason=reason)
        served_by_student = arm in routing.STUDENT_ARMS and target.version is not None
        await self.recorder.record(CallRecord(
            trace_id=target.trace_id, tenant=tenant, domain=target.domain, created_at=created, request=body,
            response=message,
            model=target.version.version_id if served_by_student else self.settings.teacher_model,  # type: ignore[union-attr]
            usage=usage if isinstance(usage, dict) else None, latency_ms=(time.perf_counter() - started) * 1000,
            metadata=metadata, user=target.user, conversation_id=target.conversation_id,
        ))

    def _headers(self, target: Target, arm: str) -> dict[str, str]:
        served = target.version.version_id if arm in routing.STUDENT_ARMS and target.version else \
            self.settings.teacher_model
        headers = {"x-forge-route": arm, "x-forge-model": served, "x-forge-trace-id": target.trace_id}
        client = self._clients.get(served) if arm in routing.STUDENT_ARMS else None
        if getattr(client, "served_by", None):  # a LoRA student: which server answered (llama.cpp, vllm, transformers)
            headers["x-forge-served-by"] = client.served_by  # type: ignore[union-attr]
        return headers

    def _load_plan(self, key: tuple[str, str]) -> Plan:
        route = self.storage.routes.get(*key)
        versions = {}
        for version_id in filter(None, (route.production_model, route.canary_model)):
            try:
                versions[version_id] = self.storage.models.get(key[0], key[1], version_id)
            except ModelNotFound:
                log.warning("route %s/%s names missing model %s; the teacher answers instead", *key, version_id)
        return Plan(route, versions)

    def _default_client(self, model: ModelVersion | str) -> ChatClient:
        from forge.providers.clients import client_for

        shared = {"concurrency": self.settings.router_concurrency, "transport": self._transport}
        if isinstance(model, str):
            return client_for(self.settings, model, **shared)
        # A failing student is not retried: the teacher answering at once beats a second wait.
        return client_for(self.settings, model, timeout_s=self.settings.router_timeout_s, max_retries=0,
                          lora=self.lora, **shared)


def _why(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g}s"
    return f"{type(exc).__name__}: {exc}"[:300]
