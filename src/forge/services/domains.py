"""A tenant's domains: its own records (versioned, in Table storage) over the packaged templates, which stay
read-only. `domain_for` is the one lookup everything keyed by domain uses; a tenant without its own record of a
name gets the template of that name, so tenants that use templates keep working unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from forge.bootstrap import Forge
from forge.domain.benchmarks import BenchmarkInvalid, BenchmarkTask, parse_benchmark
from forge.domain.domains import DomainConfig
from forge.domain.errors import AlreadyExists, DomainNotFound, InvalidInput
from forge.domain.models import JobStatus, utcnow
from forge.domain.tenant_domains import (BenchmarkRejected, DomainDisabled, DomainInUse, DomainRecord, diff, to_toml,
                                         validated, with_name, with_settings)
from forge.evaluation.benchmarks import template_benchmark
from forge.services.jobs import read_modify_write

UNFINISHED = [s for s in JobStatus if not s.finished]
TEMPLATE = 0  # the version a job records when it runs on a packaged template: it keeps to the template
TRAFFIC_DAYS = 7  # router calls this recent mean a domain serves traffic
MAX_BENCHMARK_TASKS = 5000


@dataclass(frozen=True)
class Resolved:
    """A domain as one tenant sees it: its config and where it comes from."""

    config: DomainConfig
    version: int | None  # the tenant's record version; None for a packaged template
    enabled: bool = True
    record: DomainRecord | None = None

    @property
    def source(self) -> str:
        return "template" if self.record is None else "tenant"


def resolve(forge: Forge, tenant: str, name: str, version: int | None = None) -> Resolved:
    """The tenant's own domain (at `version`, when given), else the packaged template; DomainNotFound if neither.
    `version` TEMPLATE (0) is the template even if the tenant has made its own domain of that name since."""
    if version == TEMPLATE and name in forge.domains:
        return Resolved(forge.domains[name], None)
    record = forge.storage.domains.get(tenant, name)
    if record is not None and not record.deleted:
        if version is not None and version != record.version:
            record = forge.storage.domains.version(tenant, name, version) or record
        return Resolved(record.domain(), record.version, record.enabled, record)
    if version is not None:  # a job pinned a version of a domain deleted since: the version is still kept
        kept = forge.storage.domains.version(tenant, name, version)
        if kept is not None:
            return Resolved(kept.domain(), kept.version, kept.enabled, kept)
    if name in forge.domains:
        return Resolved(forge.domains[name], None)
    raise DomainNotFound(_unknown(forge, tenant, name))


def domain_for(forge: Forge, tenant: str, name: str, version: int | None = None) -> DomainConfig:
    """The config everything keyed by domain reads (curation, PII, scoring, gates, routing, evaluation)."""
    return resolve(forge, tenant, name, version).config


def usable(forge: Forge, tenant: str, name: str) -> Resolved:
    """The domain, for something new (an import, a run, a routed call): DomainDisabled when it is switched off."""
    found = resolve(forge, tenant, name)
    if not found.enabled:
        raise DomainDisabled(f"Domain '{name}' is disabled, so it takes no traces, runs or routed calls; enable it "
                             f"with `forge domain enable {name}` (API: POST /api/v1/domains/{name}/enable).")
    return found


def names(forge: Forge, tenant: str, *, enabled_only: bool = True) -> list[str]:
    """The domains a tenant has: its own (not deleted; enabled ones only, unless asked) and the templates."""
    own = {r.name: r for r in forge.storage.domains.list(tenant) if not r.deleted}
    found = set(forge.domains) - set(own)
    found |= {n for n, r in own.items() if r.enabled or not enabled_only}
    return sorted(found)


def known(forge: Forge, tenant: str, wanted: str) -> list[str]:
    """For an import: `wanted` must be usable (a clear error if not), and these are the names lines may give."""
    usable(forge, tenant, wanted)
    return names(forge, tenant)


def list_domains(forge: Forge, tenant: str) -> list[dict[str, Any]]:
    """Every domain a tenant can use: its own records and the templates it has no record of."""
    own = {r.name: r for r in forge.storage.domains.list(tenant) if not r.deleted}
    rows = [_summary(r.name, r.domain(), r) for r in own.values()]
    rows += [_summary(name, config, None) for name, config in forge.domains.items() if name not in own]
    return sorted(rows, key=lambda row: row["name"])


def show(forge: Forge, tenant: str, name: str) -> dict[str, Any]:
    found = resolve(forge, tenant, name)
    if found.record is None:
        return {**_summary(name, found.config, None), "config": found.config.model_dump(mode="json")}
    return {**found.record.public(), "source": found.record.source, "kind": "tenant"}


def history(forge: Forge, tenant: str, name: str) -> list[DomainRecord]:
    """Every version of the tenant's domain, oldest first (when, what changed, by whom)."""
    versions = list(forge.storage.domains.history(tenant, name))
    if not versions:
        resolve(forge, tenant, name)  # DomainNotFound for a name nobody has
        raise DomainNotFound(f"'{name}' is a packaged template: it has no versions of yours. Create your own copy "
                             f"with `forge domain create {name} --from {name}`.")
    return versions


def create(forge: Forge, tenant: str, name: str, *, template: str | None = None, config: Any = None,
           actor: str | None = None, source: str | None = None) -> DomainRecord:
    """A new domain of the tenant's: a copy of a template (its benchmark too), or the given settings."""
    if (template is None) == (config is None):
        raise InvalidInput("Give either a template to copy (--from TEMPLATE, API `from`) or the domain's settings "
                           "(--file task.toml, API `config`), not both.")
    benchmark = None
    if template is not None:
        if template not in forge.domains:
            raise DomainNotFound(f"No template '{template}'; the packaged templates are "
                                 f"{', '.join(sorted(forge.domains))}.")
        copied = validated({**forge.domains[template].model_dump(mode="json"), "name": name,
                            "model_prefix": f"forge-{name}"}, origin=f"copy of {template}")
        benchmark = _template_benchmark(forge, tenant, name, template)
        source = f"template:{template}"
    else:
        copied = with_name(config, name, origin="domain settings")
    previous = forge.storage.domains.get(tenant, name)
    if previous is not None and not previous.deleted:
        raise AlreadyExists(f"Domain '{name}' already exists (version {previous.version}); change it with "
                            f"`forge domain edit {name} --set key=value` (API: PUT /api/v1/domains/{name}).")
    now = utcnow()
    record = DomainRecord(tenant=tenant, name=name, version=(previous.version + 1) if previous else 1,
                          config=copied.model_dump(mode="json"), benchmark=benchmark, source=source or "api",
                          change=["created"] + diff(None, copied.model_dump(mode="json")), actor=actor,
                          created_at=now, updated_at=now)
    return forge.storage.domains.write(record, previous=previous)


def edit(forge: Forge, tenant: str, name: str, *, settings: dict[str, Any] | None = None, config: Any = None,
         actor: str | None = None) -> DomainRecord:
    """Change settings (`settings`: dotted keys) or replace them all (`config`); a new version when anything
    changed. Editing a template by name first copies it into the tenant's own domain."""
    if (settings is None) == (config is None):
        raise InvalidInput("Give the settings to change (--set key=value) or the whole domain (API body), not both.")
    existing = forge.storage.domains.get(tenant, name)
    if existing is None or existing.deleted:
        if name not in forge.domains:
            raise DomainNotFound(_unknown(forge, tenant, name))
        create(forge, tenant, name, template=name, actor=actor)  # copy on write: the template stays as it was

    def change(current: DomainRecord) -> DomainConfig:
        if settings is not None:
            return with_settings(current.domain(), settings)
        return with_name(config, name, origin="domain settings")

    return _update(forge, tenant, name, actor, "edit", change)


def set_enabled(forge: Forge, tenant: str, name: str, enabled: bool, *, actor: str | None = None) -> DomainRecord:
    """Disable (no imports, runs, nightly or routed calls) or enable again."""
    _own(forge, tenant, name, "enable" if enabled else "disable")
    return _update(forge, tenant, name, actor, "enable" if enabled else "disable", lambda r: r.domain(),
                   enabled=enabled)


def in_use(forge: Forge, tenant: str, name: str) -> list[str]:
    """What the domain serves now: students on its route, recent router calls, runs in progress."""
    uses = []
    route = forge.storage.routes.get(tenant, name)
    if route.production_model:
        uses.append(f"student {route.production_model} in production")
    if route.canary_model:
        uses.append(f"student {route.canary_model} as the canary at {route.canary_percent:g}%")
    since = utcnow() - timedelta(days=TRAFFIC_DAYS)
    calls = sum(1 for row in forge.storage.traces.calls(tenant, domain=name, since=since)
                if row.get("source") == "router")
    if calls:
        uses.append(f"{calls} router calls in the last {TRAFFIC_DAYS} days")
    running = [j.job_id for j in forge.storage.jobs.scan(tenant, domain=name, statuses=UNFINISHED)]
    if running:
        uses.append(f"{len(running)} run(s) in progress ({', '.join(running[:3])})")
    return uses


def delete(forge: Forge, tenant: str, name: str, *, force: bool = False, actor: str | None = None) -> DomainRecord:
    """Delete the tenant's domain (its traces, models and version history are kept). A domain that serves
    traffic needs `force`, and the refusal says what deleting it would stop."""
    _own(forge, tenant, name, "delete")
    uses = in_use(forge, tenant, name)
    if uses and not force:
        stops = (f"the packaged template '{name}' takes its place (its settings, not yours, for forge:{name}, "
                 "imports and runs)" if name in forge.domains else
                 f"forge:{name} on the router (callers get 404 model_not_found), imports and runs for it, and its "
                 "nightly run")
        raise DomainInUse(f"Domain '{name}' serves traffic: {'; '.join(uses)}. Deleting it stops that: {stops}. Its "
                          f"traces, models and version history are kept. To delete it anyway run `forge domain "
                          f"delete {name} --force` (API: DELETE /api/v1/domains/{name}?force=true).")
    return _update(forge, tenant, name, actor, "delete", lambda r: r.domain(), deleted=True)


def export(forge: Forge, tenant: str, name: str, *, fmt: str = "toml") -> str:
    """The domain as a file `forge domain create NAME --file` reads back (TOML, or JSON)."""
    config = domain_for(forge, tenant, name)
    if fmt == "json":
        return config.model_dump_json(indent=2) + "\n"
    return to_toml(config)


def upload_benchmark(forge: Forge, tenant: str, name: str, text: str | None, *,
                     actor: str | None = None) -> DomainRecord:
    """Give the domain tasks of its own (JSONL, every line checked first: nothing is stored if one is bad), or
    remove them (`text` None): then it evaluates on its eval set carved from traffic."""
    summary = None
    if text is not None:
        try:
            tasks = parse_benchmark(text.splitlines(), "benchmark")
        except BenchmarkInvalid as exc:  # the tenant's input: a 422 naming the line, nothing stored
            raise BenchmarkRejected(str(exc)) from None
        if len(tasks) > MAX_BENCHMARK_TASKS:
            raise InvalidInput(f"The benchmark has {len(tasks)} tasks; at most {MAX_BENCHMARK_TASKS} are allowed.")
        summary = _benchmark_summary(forge.storage.evaluations.put_benchmark(tenant, name, text), tasks)
    if forge.storage.domains.get(tenant, name) is None and name in forge.domains:
        create(forge, tenant, name, template=name, actor=actor)
    _own(forge, tenant, name, "give tasks to")
    return _update(forge, tenant, name, actor, "benchmark", lambda r: r.domain(), benchmark=summary)


def has_tasks(forge: Forge, tenant: str, found: Resolved, name: str) -> bool:
    """Whether the domain has benchmark tasks of its own (else it evaluates on an eval set carved from traffic)."""
    if found.record is not None:
        return bool(found.record.benchmark)
    return template_benchmark(name, forge.settings.home) is not None


def benchmark(forge: Forge, tenant: str, found: Resolved, name: str) -> list[BenchmarkTask]:
    """The domain's own tasks: the tenant's uploaded ones, or a template's packaged ones; [] when it has none."""
    if found.record is not None:
        meta = found.record.benchmark
        if not meta:
            return []
        text = forge.storage.evaluations.benchmark(tenant, name, meta["sha256"])
        return parse_benchmark(text.splitlines(), f"benchmark of {name}")
    return template_benchmark(name, forge.settings.home) or []


def _update(forge: Forge, tenant: str, name: str, actor: str | None, source: str,
            change: Callable[[DomainRecord], DomainConfig], **fields: Any) -> DomainRecord:
    """Write the next version when something changed; a concurrent change makes it read and apply again."""
    written: list[DomainRecord] = []

    def read() -> DomainRecord:
        record = forge.storage.domains.get(tenant, name)
        if record is None or record.deleted:
            raise DomainNotFound(_unknown(forge, tenant, name))
        return record

    def apply(current: DomainRecord) -> None:
        written.clear()
        config = change(current).model_dump(mode="json")
        lines = diff(current.config, config)
        for key, value in fields.items():
            if getattr(current, key) != value:
                lines.append(f"{key}: {_shown(getattr(current, key))} → {_shown(value)}")
        if not lines:
            written.append(current)
            return
        written.append(current.model_copy(update={
            "version": current.version + 1, "config": config, "change": lines, "source": source, "actor": actor,
            "updated_at": utcnow(), **fields}))

    def save(current: DomainRecord) -> DomainRecord:
        if written[0] is current:
            return current  # nothing changed: no new version
        return forge.storage.domains.write(written[0], previous=current)

    return read_modify_write(read, apply, save, f"Domain {name}")


def _own(forge: Forge, tenant: str, name: str, verb: str) -> DomainRecord:
    record = forge.storage.domains.get(tenant, name)
    if record is not None and not record.deleted:
        return record
    if name in forge.domains:
        raise InvalidInput(f"'{name}' is a packaged template, which is read-only, so you cannot {verb} it. Make it "
                           f"yours first: `forge domain create {name} --from {name}`.")
    raise DomainNotFound(_unknown(forge, tenant, name))


def _template_benchmark(forge: Forge, tenant: str, name: str, template: str) -> dict[str, Any] | None:
    tasks = template_benchmark(template, forge.settings.home)
    if not tasks:
        return None
    text = "".join(t.model_dump_json(exclude_defaults=True) + "\n" for t in tasks)
    return _benchmark_summary(forge.storage.evaluations.put_benchmark(tenant, name, text), tasks)


def _benchmark_summary(sha256: str, tasks: list[BenchmarkTask]) -> dict[str, Any]:
    return {"sha256": sha256, "tasks": len(tasks), "categories": sorted({t.category for t in tasks})}


def _summary(name: str, config: DomainConfig, record: DomainRecord | None) -> dict[str, Any]:
    return {"name": name, "kind": "tenant" if record else "template", "description": config.description,
            "task": config.task.type, "version": record.version if record else None,
            "enabled": record.enabled if record else True, "updatedAt": record.updated_at.isoformat() if record
            else None, "benchmarkTasks": (record.benchmark or {}).get("tasks") if record else None}


def _shown(value: Any) -> str:
    if isinstance(value, dict) and "sha256" in value:
        return f"sha256 {value['sha256'][:12]} ({value.get('tasks')} tasks)"
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _unknown(forge: Forge, tenant: str, name: str) -> str:
    own = [r.name for r in forge.storage.domains.list(tenant) if not r.deleted]
    return (f"No domain '{name}'. Known domains: yours: {', '.join(own) or 'none yet'}; packaged templates: "
            f"{', '.join(sorted(forge.domains))}. Create it with `forge domain create {name} --from TEMPLATE` or "
            f"`--file task.toml` (API: POST /api/v1/domains).")
