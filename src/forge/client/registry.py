"""Model versions (deploy, promote, roll back, export), traces, domains, canaries, insights and the router."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from forge.api.schemas import (DeployIn, FeedbackIn, Labels, ModelDetail, ModelStats, ModelView, Page, PromoteIn,
                               RegistryChangeView, TraceBatch, TracesImported, TraceView)
from forge.client.base import Resource, seg
from forge.client.core import Call, body, model, operation
from forge.client.runs import _labels, given

MODELS = "/api/v1/models"
TRACES = "/api/v1/traces"
DOMAINS = "/api/v1/domains"


class Models(Resource):
    @operation("GET", MODELS)
    def list(self, *, domain: str | None = None, limit: int | None = None,
             continuation: str | None = None) -> Page[ModelView]:
        return self._send(Call("GET", MODELS, {"domain": domain, "limit": limit, "continuation": continuation},
                               parse=model(Page[ModelView])))

    def iter(self, *, domain: str | None = None, page_size: int = 100) -> Iterator[ModelView]:
        return self._pages(Call("GET", MODELS, {"domain": domain, "limit": page_size}), ModelView.model_validate)

    @operation("GET", f"{MODELS}/stats")
    def stats(self, *, days: float | None = None) -> ModelStats:
        return self._send(Call("GET", f"{MODELS}/stats", {"days": days}, parse=model(ModelStats)))

    @operation("GET", f"{MODELS}/{{version_id}}")
    def get(self, version_id: str, *, days: float | None = None) -> ModelDetail:
        """The version, its role in its route, lineage and usage over `days`."""
        return self._send(Call("GET", f"{MODELS}/{seg(version_id)}", {"days": days}, parse=model(ModelDetail)))

    @operation("PUT", f"{MODELS}/{{version_id}}")
    def update(self, version_id: str, *, name: str | None = None, description: str | None = None,
               tags: list[str] | None = None) -> ModelView:
        request = Labels(**_labels(name, description, tags))
        return self._send(Call("PUT", f"{MODELS}/{seg(version_id)}", json=body(request), parse=model(ModelView)))

    @operation("DELETE", f"{MODELS}/{{version_id}}")
    def delete(self, version_id: str) -> ModelView:
        """Delete a version that serves nothing (one in production or the canary is a Conflict)."""
        return self._send(Call("DELETE", f"{MODELS}/{seg(version_id)}", parse=model(ModelView)))

    @operation("POST", f"{MODELS}/{{version_id}}/deploy")
    def deploy(self, version_id: str, *, domain: str | None = None, stage: str = "production",
               percent: float | None = None) -> RegistryChangeView:
        """Serve it on `domain`'s route (its own by default), in production or as the canary at `percent`."""
        request = DeployIn(stage=stage, **given(domain=domain, percent=percent))
        return self._send(Call("POST", f"{MODELS}/{seg(version_id)}/deploy", json=body(request),
                               parse=model(RegistryChangeView)))

    @operation("POST", f"{MODELS}/{{version_id}}/promote")
    def promote(self, version_id: str, *, stage: str | None = None,
                canary_percent: float | None = None) -> RegistryChangeView:
        request = PromoteIn(**given(stage=stage, canary_percent=canary_percent))
        return self._send(Call("POST", f"{MODELS}/{seg(version_id)}/promote", json=body(request),
                               parse=model(RegistryChangeView)))

    @operation("POST", f"{MODELS}/{{version_id}}/rollback")
    def rollback(self, version_id: str) -> RegistryChangeView:
        return self._send(Call("POST", f"{MODELS}/{seg(version_id)}/rollback", parse=model(RegistryChangeView)))

    @operation("POST", f"{MODELS}/{{version_id}}/archive")
    def archive(self, version_id: str) -> RegistryChangeView:
        return self._send(Call("POST", f"{MODELS}/{seg(version_id)}/archive", parse=model(RegistryChangeView)))

    @operation("POST", f"{MODELS}/{{version_id}}/export")
    def export(self, version_id: str, *, format: str, quant: str | None = None) -> dict[str, Any]:
        """Export a LoRA student (peft, merged, gguf, ollama); its files are listed with their download URLs."""
        return self._send(Call("POST", f"{MODELS}/{seg(version_id)}/export",
                               json=given(format=format, quant=quant)))

    @operation("GET", f"{MODELS}/{{version_id}}/exports/{{label}}/{{name}}")
    def download(self, version_id: str, label: str, name: str) -> bytes:
        """One file of an export (`url` in the export's file list names the three parts)."""
        return self._send(Call("GET", f"{MODELS}/{seg(version_id)}/exports/{seg(label)}/{seg(name)}",
                               parse=lambda response: response.content))


class Traces(Resource):
    @operation("POST", TRACES)
    def ingest(self, traces: list[dict[str, Any]], *, domain: str | None = None) -> TracesImported:
        """Store a batch (up to 1000) of chat or prompt/response records; refused ones are listed by index."""
        request = TraceBatch(traces=traces, **given(domain=domain))
        return self._send(Call("POST", TRACES, json=body(request), parse=model(TracesImported)))

    @operation("GET", TRACES)
    def list(self, *, domain: str | None = None, since: datetime | None = None, until: datetime | None = None,
             limit: int | None = None, continuation: str | None = None) -> Page[TraceView]:
        return self._send(Call("GET", TRACES, {"domain": domain, "since": since, "until": until, "limit": limit,
                                               "continuation": continuation}, parse=model(Page[TraceView])))

    def iter(self, *, domain: str | None = None, since: datetime | None = None, until: datetime | None = None,
             page_size: int = 1000) -> Iterator[TraceView]:
        return self._pages(Call("GET", TRACES, {"domain": domain, "since": since, "until": until,
                                                "limit": page_size}), TraceView.model_validate)

    @operation("GET", f"{TRACES}/capture")
    def capture(self) -> dict[str, Any]:
        """What the router's trace capture did for this tenant, and its lag."""
        return self._send(Call("GET", f"{TRACES}/capture"))

    @operation("PATCH", f"{TRACES}/{{trace_id}}/feedback")
    def feedback(self, trace_id: str, *, feedback: str | None = None, score: float | None = None) -> TraceView:
        request = FeedbackIn(**given(feedback=feedback, score=score))
        return self._send(Call("PATCH", f"{TRACES}/{seg(trace_id)}/feedback", json=body(request),
                               parse=model(TraceView)))


class Domains(Resource):
    @operation("GET", DOMAINS)
    def list(self) -> dict[str, Any]:
        return self._send(Call("GET", DOMAINS))

    @operation("POST", DOMAINS)
    def create(self, name: str, *, template: str | None = None, config: dict[str, Any] | None = None) -> dict:
        """A domain of your own: a copy of a template, or these settings (the domain file's schema)."""
        return self._send(Call("POST", DOMAINS, json={"name": name, **given(**{"from": template, "config": config})}))

    @operation("GET", f"{DOMAINS}/{{name}}")
    def get(self, name: str) -> dict[str, Any]:
        return self._send(Call("GET", f"{DOMAINS}/{seg(name)}"))

    @operation("PUT", f"{DOMAINS}/{{name}}")
    def replace(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        return self._send(Call("PUT", f"{DOMAINS}/{seg(name)}", json=config))

    @operation("PATCH", f"{DOMAINS}/{{name}}")
    def edit(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Set some settings by dotted key ({"gates.min_score": 70})."""
        return self._send(Call("PATCH", f"{DOMAINS}/{seg(name)}", json={"set": settings}))

    @operation("DELETE", f"{DOMAINS}/{{name}}")
    def delete(self, name: str, *, force: bool = False) -> dict[str, Any]:
        return self._send(Call("DELETE", f"{DOMAINS}/{seg(name)}", {"force": force}))

    @operation("POST", f"{DOMAINS}/{{name}}/{{action}}")
    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        return self._send(Call("POST", f"{DOMAINS}/{seg(name)}/{'enable' if enabled else 'disable'}"))

    @operation("GET", f"{DOMAINS}/{{name}}/versions")
    def versions(self, name: str) -> dict[str, Any]:
        return self._send(Call("GET", f"{DOMAINS}/{seg(name)}/versions"))

    @operation("GET", f"{DOMAINS}/{{name}}/export")
    def export(self, name: str, *, format: str = "toml") -> str:
        return self._send(Call("GET", f"{DOMAINS}/{seg(name)}/export", {"format": format},
                               parse=lambda response: response.text))

    @operation("PUT", f"{DOMAINS}/{{name}}/benchmark")
    def set_benchmark(self, name: str, tasks: str | bytes | Path | None) -> dict[str, Any]:
        """The domain's own benchmark tasks (JSONL); None removes them."""
        if tasks is None:
            return self._delete_benchmark(name)
        content = Path(tasks).read_bytes() if isinstance(tasks, Path) else \
            tasks.encode() if isinstance(tasks, str) else tasks
        return self._send(Call("PUT", f"{DOMAINS}/{seg(name)}/benchmark", content=content,
                               headers={"Content-Type": "application/x-ndjson"}))

    @operation("DELETE", f"{DOMAINS}/{{name}}/benchmark")
    def _delete_benchmark(self, name: str) -> dict[str, Any]:
        return self._send(Call("DELETE", f"{DOMAINS}/{seg(name)}/benchmark"))

    @operation("GET", f"{DOMAINS}/{{name}}/eval-set")
    def eval_set(self, name: str, *, version: int | None = None, items: bool = False) -> dict[str, Any]:
        return self._send(Call("GET", f"{DOMAINS}/{seg(name)}/eval-set", {"version": version, "items": items}))


class Canary(Resource):
    @operation("GET", "/api/v1/canary/{domain}")
    def get(self, domain: str, *, candidate: str | None = None) -> dict[str, Any]:
        """The domain's canary: its stage, control, recent decisions and judged pairs (of `candidate`, an earlier
        one, when given)."""
        return self._send(Call("GET", f"/api/v1/canary/{seg(domain)}", {"candidate": candidate}))

    @operation("POST", "/api/v1/canary/{domain}/control")
    def control(self, domain: str, action: str) -> dict[str, Any]:
        """pin, pause, resume or skip."""
        return self._send(Call("POST", f"/api/v1/canary/{seg(domain)}/control", json={"action": action}))


class Drift(Resource):
    @operation("GET", "/api/v1/drift/{domain}")
    def get(self, domain: str, *, days: float | None = None) -> dict[str, Any]:
        """The domain's drift checks over the last `days` (7 by default) and their alerts."""
        return self._send(Call("GET", f"/api/v1/drift/{seg(domain)}", {"days": days}))


class Insights(Resource):
    @operation("GET", "/api/v1/insights/overview")
    def overview(self, *, days: int | None = None) -> dict[str, Any]:
        return self._send(Call("GET", "/api/v1/insights/overview", {"days": days}))

    @operation("GET", "/api/v1/insights/domains")
    def domains(self) -> dict[str, Any]:
        return self._send(Call("GET", "/api/v1/insights/domains"))

    @operation("GET", "/api/v1/economics")
    def economics(self, *, domain: str | None = None, days: int | None = None) -> dict[str, Any]:
        """Per domain and day: the teacher's cost of the routed traffic, its actual cost, the saving, the quality."""
        return self._send(Call("GET", "/api/v1/economics", {"domain": domain, "days": days}))


class Router(Resource):
    """The OpenAI-compatible endpoints (the `openai` SDK pointed at `{url}/v1` works as well)."""

    @operation("POST", "/v1/chat/completions")
    def chat(self, model_name: str, messages: list[dict[str, Any]], **parameters: Any) -> dict[str, Any]:
        """A chat completion from `forge:{domain}`: its production or canary student, or the teacher."""
        return self._send(Call("POST", "/v1/chat/completions",
                               json={"model": model_name, "messages": messages, **parameters}))

    @operation("GET", "/v1/models")
    def models(self) -> dict[str, Any]:
        return self._send(Call("GET", "/v1/models"))
