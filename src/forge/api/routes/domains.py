"""`/api/v1/domains`: a tenant's own domains (create from a template or settings, change, export, disable, delete,
their versions, benchmark tasks and eval set). The body is the domain file's schema, as JSON."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from starlette.responses import PlainTextResponse

from forge.api.auth import ForgeDep, Reader, Writer
from forge.api.contract import problems, schema_of
from forge.api.ids import DomainName
from forge.domain.domains import DomainConfig
from forge.domain.sections import Section
from forge.domain.errors import InvalidInput
from forge.domain.models import ApiKey
from forge.services import domains as service
from forge.services import evalsets

router = APIRouter(prefix="/api/v1/domains", tags=["domains"])


def setting_keys(model: type[Section], prefix: str = "") -> list[str]:
    """Every dotted key `PATCH` (and `forge domain edit --set`) may set: each table and each setting in it."""
    keys = []
    for field, info in model.model_fields.items():
        if not prefix and field == "name":
            continue  # a domain is not renamed
        keys.append(prefix + field)
        if isinstance(info.annotation, type) and issubclass(info.annotation, Section):
            keys += setting_keys(info.annotation, f"{prefix}{field}.")
    return keys


# The domain file's schema (a name in it is optional: the path or `name` gives it). What JSON Schema cannot say
# (weights adding up to 1, min below max, regexes that compile) is checked by the server and named in its 422.
SETTINGS = schema_of("DomainSettings", DomainConfig, optional=("name",))
Settings = Annotated[dict[str, Any], WithJsonSchema(SETTINGS)]


class DomainIn(BaseModel):
    """A template to copy (`from`) or the domain's settings (`config`): one of them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True,
                              json_schema_extra={"oneOf": [{"required": ["from"]}, {"required": ["config"]}]})

    name: DomainName
    template: str = Field(None, alias="from", description="A packaged template to copy (its tasks too).")
    config: Settings = Field(None, description="The domain's settings: the domain file's schema.")


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    set: dict[str, Any] = Field(min_length=1, description="Dotted keys and their new values, e.g. "
                                                         "{\"gates.min_score\": 70}.",
                                json_schema_extra={"propertyNames": {"enum": setting_keys(DomainConfig)}})


EXPORTED = {200: {"description": "The domain file: TOML, or JSON with `format=json`.",
                  "content": {"application/toml": {"schema": {"type": "string"}},
                              "application/json": {"schema": {"type": "object"}}}}}
_TASKS = {"type": "string", "format": "binary",
          "description": "Benchmark tasks, one JSON task a line (docs/domains.md)."}
BENCHMARK_BODY = {"requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": _TASKS},
                                                                "application/jsonl": {"schema": _TASKS},
                                                                "text/plain": {"schema": _TASKS}}}}


def _actor(key: ApiKey) -> str:
    return f"api key {key.name}"


def _changed(request: Request, tenant: str) -> None:
    """The router sees the change at once in this process (elsewhere within its route TTL)."""
    gateway = getattr(request.app.state, "chat_router", None)
    if gateway is not None:
        gateway.domains.invalidate(tenant)


@router.get("")
def list_domains(key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """The tenant's own domains and the packaged templates it has no record of."""
    return {"items": service.list_domains(forge, key.tenant)}


@router.post("", status_code=201, responses=problems(404, 409))
def create_domain(body: DomainIn, request: Request, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """A new domain: `{"name", "from": TEMPLATE}` copies a template; `{"name", "config": {…}}` takes settings."""
    record = service.create(forge, key.tenant, body.name, template=body.template, config=body.config,
                            actor=_actor(key))
    _changed(request, key.tenant)
    return record.public()


@router.get("/{name}")
def get_domain(name: DomainName, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    return service.show(forge, key.tenant, name)


@router.put("/{name}", responses=problems(409))
def replace_domain(name: DomainName, config: Settings, request: Request, key: Writer,
                   forge: ForgeDep) -> dict[str, Any]:
    """Replace every setting (the body is the whole domain); a new version when anything changed."""
    record = service.edit(forge, key.tenant, name, config=config, actor=_actor(key))
    _changed(request, key.tenant)
    return record.public()


@router.patch("/{name}", responses=problems(409))
def edit_domain(name: DomainName, body: SettingsIn, request: Request, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Change some settings by dotted key, as `forge domain edit NAME --set key=value` does."""
    record = service.edit(forge, key.tenant, name, settings=body.set, actor=_actor(key))
    _changed(request, key.tenant)
    return record.public()


@router.delete("/{name}", responses=problems(409))
def delete_domain(name: DomainName, request: Request, key: Writer, forge: ForgeDep,
                  force: bool = Query(False, description="Delete even though it serves traffic.")) -> dict[str, Any]:
    """Delete the domain (traces, models and versions are kept); one serving traffic needs `force=true`."""
    record = service.delete(forge, key.tenant, name, force=force, actor=_actor(key))
    _changed(request, key.tenant)
    return record.public()


@router.post("/{name}/{action}", responses=problems(409))
def switch_domain(name: DomainName, action: Literal["enable", "disable"], request: Request, key: Writer,
                  forge: ForgeDep) -> dict[str, Any]:
    """Disable (no imports, runs, nightly run or routed calls) or enable again."""
    record = service.set_enabled(forge, key.tenant, name, action == "enable", actor=_actor(key))
    _changed(request, key.tenant)
    return record.public()


@router.get("/{name}/versions")
def domain_versions(name: DomainName, key: Reader, forge: ForgeDep) -> dict[str, Any]:
    """Every version, oldest first: when, what changed and by whom, and the settings it had."""
    return {"items": [v.public() for v in service.history(forge, key.tenant, name)]}


@router.get("/{name}/export", responses=EXPORTED)
def export_domain(name: DomainName, key: Reader, forge: ForgeDep,
                  format: Literal["toml", "json"] = "toml") -> PlainTextResponse:
    """The domain as a file `forge domain create NAME --file` reads back."""
    media = "application/toml" if format == "toml" else "application/json"
    return PlainTextResponse(service.export(forge, key.tenant, name, fmt=format), media_type=media)


@router.put("/{name}/benchmark", openapi_extra=BENCHMARK_BODY, responses=problems(409))
async def put_benchmark(name: DomainName, request: Request, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Benchmark tasks of the domain's own, one JSON task a line; a bad line is a 422 naming it, nothing stored."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("The benchmark must be UTF-8 JSONL: one JSON task a line.") from None
    return service.upload_benchmark(forge, key.tenant, name, text, actor=_actor(key)).public()


@router.delete("/{name}/benchmark", responses=problems(409))
def delete_benchmark(name: DomainName, key: Writer, forge: ForgeDep) -> dict[str, Any]:
    """Remove the domain's own tasks: it evaluates on its eval set carved from traffic again."""
    return service.upload_benchmark(forge, key.tenant, name, None, actor=_actor(key)).public()


@router.get("/{name}/eval-set")
def get_eval_set(name: DomainName, key: Reader, forge: ForgeDep, version: int | None = Query(None, ge=1),
                 items: bool = Query(False, description="Include the held-out conversations.")) -> dict[str, Any]:
    """The eval set carved from the domain's traffic: its versions, size, strata (and items)."""
    service.resolve(forge, key.tenant, name)
    found, held = evalsets.items(forge, key.tenant, name, version)
    versions = sorted(forge.storage.evaluations.versions(key.tenant, name), key=lambda s: s.version)
    shown: dict[str, Any] = {"domain": name, "current": found.public() if found else None,
                             "versions": [v.public() for v in versions]}
    if items:
        shown["items"] = [i.model_dump(mode="json") for i in held]
    return shown
