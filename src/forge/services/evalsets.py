"""A domain's eval set: carved from its golden traffic before a run trains, grown by later runs until it reaches
its size, frozen once carved (a version's items never change), and excluded from every training set by
conversation. Domains with benchmark tasks of their own evaluate on those instead."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from forge.bootstrap import Forge
from forge.domain import evalsets, routing, tasks
from forge.domain.content import content_text
from forge.domain.domains import DomainConfig
from forge.domain.errors import AlreadyExists
from forge.domain.evalsets import EvalItem, EvalSet


def ensure(forge: Forge, tenant: str, domain: str, config: DomainConfig, *, until: datetime | None,
           job_id: str | None = None) -> EvalSet | None:
    """The eval set a run evaluates on, grown from the golden traffic up to `until` that no earlier carve read.

    Idempotent per job: a retried curate finds the version its first attempt carved."""
    store = forge.storage.evaluations
    latest = store.latest(tenant, domain)
    if latest is not None and job_id is not None and latest.job_id == job_id:
        return latest
    rules = config.eval_set
    current = latest.size if latest else 0
    if current >= rules.size:
        return latest  # full: frozen from now on
    kept = store.items(tenant, domain, latest.version) if latest else []
    held = {item.group for item in kept}
    candidates: dict[str, tuple[str, str, datetime]] = {}  # conversation → (stratum, newest trace id, its time)
    for trace in forge.storage.traces.scan(tenant, domain=domain, since=latest.until if latest else None,
                                           until=until):
        answer, calls = content_text(trace.response.get("content")), trace.response.get("tool_calls")
        if (not trace.is_golden(forge.settings.min_score) or routing.answered_by_student(trace.metadata)
                or tasks.reference_problem(config.task, answer, calls)):
            continue
        group = evalsets.conversation(trace)
        if group in held:
            continue
        prior = candidates.get(group)
        if prior is None or trace.created_at >= prior[2]:
            candidates[group] = (evalsets.stratum_of(rules, config.task, trace), trace.id, trace.created_at)
    count = evalsets.wanted(rules, current, len(candidates))
    if count == 0:
        return latest
    version = (latest.version + 1) if latest else 1
    chosen = evalsets.choose({g: c[0] for g, c in candidates.items()}, count, rules.seed)
    added = [evalsets.item_of(forge.storage.traces.get(tenant, candidates[g][1]), g, candidates[g][0], version)
             for g in chosen]
    items = kept + added
    record = EvalSet(tenant=tenant, domain=domain, version=version, size=len(items), added=len(added),
                     strata=dict(Counter(i.stratum for i in items)), until=until, job_id=job_id)
    try:
        return store.add(record, items)
    except AlreadyExists:  # another run carved this version at the same moment: its set stands
        return store.get(tenant, domain, version)


def held_out_groups(forge: Forge, tenant: str, domain: str) -> frozenset[str]:
    """Every conversation any version of the domain's eval set holds (the latest holds them all)."""
    latest = forge.storage.evaluations.latest(tenant, domain)
    if latest is None:
        return frozenset()
    return frozenset(item.group for item in forge.storage.evaluations.items(tenant, domain, latest.version))


def items(forge: Forge, tenant: str, domain: str, version: int | None = None) -> tuple[EvalSet | None, list[EvalItem]]:
    """A version of the eval set (the latest when none is given) and its items."""
    store = forge.storage.evaluations
    found = store.get(tenant, domain, version) if version is not None else store.latest(tenant, domain)
    return found, (store.items(tenant, domain, found.version) if found else [])
