"""Economics in view: per domain and day, what the routed traffic would have cost on the teacher against what it
did cost, the saving, and the quality it was bought at (people's verdicts on the student's answers, judged pairs).

It reads a few properties of each trace (`trace_facts`, never the conversations) and the judged pairs."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Iterable

from forge.bootstrap import Forge
from forge.config import Settings
from forge.domain.economics import (CallFacts, DayEconomics, DomainEconomics, EconomicsReport, Outcome, PriceBasis,
                                    Pricing, answerer, combine, day_economics, lora_hours, lora_shares)
from forge.domain.models import ModelVersion, utcnow
from forge.domain.usage import Prices
from forge.services import domains as domain_service
from forge.storage.drift import DriftRepository
from forge.storage.trace_days import trace_facts

MAX_DAYS = 90
PAGE = 1000


def pricing(settings: Settings) -> Pricing:
    return Pricing(teacher=Prices(settings.teacher_price_input, settings.teacher_price_output),
                   student=Prices(settings.student_price_input, settings.student_price_output),
                   lora_cost_per_hour=settings.lora_cost_per_hour)


def by_day(forge: Forge, tenant: str, domain: str, days: int = 14, now: datetime | None = None) -> list[DayEconomics]:
    """The domain's economics for each of the last `days` days (UTC, today included), oldest first."""
    return _by_day(forge, tenant, [domain], days, now or utcnow())[domain]


def report(forge: Forge, tenant: str, *, domain: str | None = None, days: int = 14,
           now: datetime | None = None) -> EconomicsReport:
    """Per domain (one, or every domain of the tenant) its days and their total; and the tenant's total."""
    now = now or utcnow()
    if domain is not None:
        domain_service.resolve(forge, tenant, domain)  # DomainNotFound names the domains there are
    wanted = [domain] if domain else _all_domains(forge, tenant)
    found = _by_day(forge, tenant, wanted, days, now)
    items = [DomainEconomics(domain=name, days=found[name], total=combine(found[name])) for name in wanted]
    return EconomicsReport(since=_start(now, days).date().isoformat(), days=days,
                           prices=PriceBasis.of(pricing(forge.settings)), domains=items,
                           total=combine(item.total for item in items))


def _by_day(forge: Forge, tenant: str, wanted: list[str], days: int, now: datetime) -> dict[str, list[DayEconomics]]:
    start, prices = _start(now, days), pricing(forge.settings)
    dates = [(start + timedelta(days=i)).date() for i in range(days)]
    versions = _versions(forge, tenant)
    # The LoRA server's cost is shared by every domain's LoRA-served calls, so with an hourly cost all are read.
    read = wanted if prices.lora_cost_per_hour is None else sorted(set(wanted) | set(_all_domains(forge, tenant)))
    calls = {name: _calls(forge, tenant, name, start, versions) for name in read}
    shares: dict[str, dict[str, float]] = {}
    if prices.lora_cost_per_hour is not None:
        for day in dates:
            key = day.isoformat()
            counts = {name: sum(c.lora for c in calls[name].get(key, ())) for name in read}
            shares[key] = lora_shares(counts, prices.lora_cost_per_hour * lora_hours(day, now))
    repo = DriftRepository(forge.storage.account)
    found = {}
    for name in wanted:
        outcomes = _outcomes(repo, tenant, name, [v for v in versions.values() if v.domain == name], start)
        found[name] = [day_economics(d.isoformat(), calls[name].get(d.isoformat(), ()),
                                     outcomes.get(d.isoformat(), ()), prices,
                                     shares.get(d.isoformat(), {}).get(name, 0.0)) for d in dates]
    return found


def _calls(forge: Forge, tenant: str, domain: str, start: datetime,
           versions: dict[str, ModelVersion]) -> dict[str, list[CallFacts]]:
    """The domain's routed calls since `start` by day: who answered, tokens, LoRA-served or not, the verdict."""
    teacher = forge.settings.teacher_model
    days: dict[str, list[CallFacts]] = defaultdict(list)
    for facts in trace_facts(forge.storage.traces, tenant, domain, start, with_route=True):
        if facts.source != "router":
            continue  # imported traces were served elsewhere: not this router's traffic
        who = answerer(facts.route, facts.model, teacher)
        version = versions.get(facts.model or "") if who == "student" else None
        days[facts.day].append(CallFacts(
            who, facts.prompt_tokens, facts.completion_tokens, lora=version is not None and is_lora(version),
            fallback=facts.route == "fallback", feedback=facts.feedback))
    return days


def is_lora(version: ModelVersion) -> bool:
    """A student served as an adapter (a LoRA server, or in-process): it costs compute, not tokens. A hosted
    student (`ft:…`, a provider model id) is billed per token."""
    return bool(version.adapter_uri)


def _outcomes(repo: DriftRepository, tenant: str, domain: str, versions: Iterable[ModelVersion],
              start: datetime) -> dict[str, list[Outcome | None]]:
    """The verdicts on the domain's students against the teacher since `start` (the sampled answers drift watching
    replays on the teacher and judges), by the day of the call each pair replayed."""
    days: dict[str, list[Outcome | None]] = defaultdict(list)
    for version in versions:
        for pair in repo.pairs_of(tenant, version.version_id, start):
            if pair.domain == domain:
                days[pair.created_at.date().isoformat()].append(pair.outcome)
    return days


def _versions(forge: Forge, tenant: str) -> dict[str, ModelVersion]:
    found, token = {}, None
    while True:
        page = forge.storage.models.list(tenant, limit=PAGE, continuation=token)
        found.update((v.version_id, v) for v in page.items)
        token = page.continuation
        if not token:
            return found


def _all_domains(forge: Forge, tenant: str) -> list[str]:
    return domain_service.names(forge, tenant, enabled_only=False)


def _start(now: datetime, days: int) -> datetime:
    return (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
