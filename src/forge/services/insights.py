"""What the dashboard's overview and domain pages read that no other endpoint gives: per-day traces, golden traces
and routed requests, the saving against the teacher, alerts (failed jobs, refused promotions, drift, canary
roll-backs), and the configured domains."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from forge.bootstrap import Forge
from forge.domain.models import DistillationJob, JobStatus, Route, is_golden, utcnow
from forge.domain.usage import Call, Prices, summarize
from forge.services import domains as domain_service
from forge.storage.canaries import CanaryRepository
from forge.storage.drift import DriftRepository
from forge.storage.trace_days import trace_facts

MAX_ALERTS = 20


def overview(forge: Forge, tenant: str, *, days: int = 14, now: datetime | None = None) -> dict[str, Any]:
    """Per configured domain: daily series over `days` (UTC), who serves, the last job, the saving; and alerts."""
    now = now or utcnow()
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    dates = [(start + timedelta(days=i)).date().isoformat() for i in range(days)]
    jobs = sorted(forge.storage.jobs.scan(tenant), key=lambda j: j.created_at)
    settings = forge.settings
    teacher_prices = Prices(settings.teacher_price_input, settings.teacher_price_output)
    student_prices = Prices(settings.student_price_input, settings.student_price_output)
    domains = []
    for name in domain_service.names(forge, tenant):
        route = forge.storage.routes.get(tenant, name)
        series = {d: {"date": d, "traces": 0, "golden": 0, "requests": Counter()} for d in dates}
        calls = []
        for facts in trace_facts(forge.storage.traces, tenant, name, start):
            day = series.get(facts.day)
            if day is None:
                continue
            day["traces"] += 1
            day["golden"] += is_golden(facts.score, facts.feedback, settings.min_score)
            if facts.source == "router" and facts.model:
                day["requests"][_role(facts.model, route, settings.teacher_model)] += 1
                calls.append(Call(facts.model, facts.prompt_tokens, facts.completion_tokens, facts.latency_ms))
        usage = summarize(calls, teacher=settings.teacher_model, teacher_prices=teacher_prices,
                          student_prices=student_prices, observed_days=days)
        mine = [j for j in jobs if j.domain == name]
        domains.append({
            "domain": name,
            "description": domain_service.domain_for(forge, tenant, name).description,
            "days": [{**d, "requests": dict(d["requests"])} for d in series.values()],
            "route": {"productionModel": route.production_model, "canaryModel": route.canary_model,
                      "canaryPercent": route.canary_percent, "teacher": settings.teacher_model},
            "lastJob": _job_line(mine[-1]) if mine else None,
            "requests": sum(u.requests for u in usage.values()),
            "savingUsd": round(sum(u.saving_usd for u in usage.values()), 6),
            "teacherCostUsd": round(sum(u.teacher_cost_usd for u in usage.values()), 6),
        })
    found = sorted(_alerts(jobs, start) + _live_alerts(forge, tenant, [d["domain"] for d in domains], start),
                   key=lambda a: a["at"], reverse=True)
    return {"since": start.isoformat(), "days": days, "domains": domains, "alerts": found[:MAX_ALERTS]}


def domains(forge: Forge, tenant: str) -> list[dict[str, Any]]:
    """The tenant's domains' settings, in the domain file's schema (the same GET /api/v1/domains/{name} shows)."""
    return [domain_service.domain_for(forge, tenant, name).model_dump(mode="json")
            for name in domain_service.names(forge, tenant)]


def _role(model: str, route: Route, teacher: str) -> str:
    if model == route.production_model:
        return "production"
    if model == route.canary_model:
        return "canary"
    return "teacher" if model == teacher else "other"


def _job_line(job: DistillationJob) -> dict[str, Any]:
    return {"jobId": job.job_id, "status": job.status.value, "createdAt": job.created_at.isoformat(),
            "updatedAt": job.updated_at.isoformat(), "promotion": (job.promotion or {}).get("outcome")}


def _live_alerts(forge: Forge, tenant: str, names: list[str], since: datetime) -> list[dict[str, Any]]:
    """Per domain, its latest drift check with alerts and its canary's roll-backs since `since`."""
    checks, canaries = DriftRepository(forge.storage.account), CanaryRepository(forge.storage.account)
    found = []
    for name in names:
        drifted = [c for c in checks.history(tenant, name, since_window=since.timestamp()) if c.alerts]
        if drifted:
            last = drifted[-1]
            found.append({"level": "warning", "kind": "drift.alert", "domain": name, "at": last.at.isoformat(),
                          "modelVersionId": last.model, "message": "; ".join(last.alerts)})
        state = canaries.get(tenant, name)
        found += [{"level": "warning", "kind": "canary.rollback", "domain": name, "at": d["at"],
                   "modelVersionId": state.candidate, "message": "; ".join(d.get("reasons") or [])}
                  for d in state.decisions if d.get("action") == "rollback" and d.get("at", "") >= since.isoformat()]
    return found


def _alerts(jobs: list[DistillationJob], since: datetime) -> list[dict[str, Any]]:
    """Failed jobs and refused promotions (a student its gates archived) since `since`, newest first."""
    found = []
    for job in reversed(jobs):
        if job.updated_at < since:
            continue
        if job.status == JobStatus.FAILED:
            found.append({"level": "error", "kind": "job.failed", "jobId": job.job_id, "domain": job.domain,
                          "at": job.updated_at.isoformat(), "message": job.error or "the job failed"})
        elif (job.promotion or {}).get("outcome") == "archived":
            reasons = job.promotion.get("reasons") or []
            found.append({"level": "warning", "kind": "promotion.refused", "jobId": job.job_id, "domain": job.domain,
                          "at": job.updated_at.isoformat(), "modelVersionId": job.promotion.get("model_version_id"),
                          "message": reasons[0] if reasons else "the gates refused the student"})
        if len(found) >= MAX_ALERTS:
            break
    return found
