"""`forge demo`: run what Forge has today on the embedded default, and say plainly what it did."""

from __future__ import annotations

import httpx

from forge.api.app import create_app
from forge.api.server import serving
from forge.cli.common import forge, out
from forge.demo import seed
from forge.domain.models import utcnow
from forge.services import traces as service

TENANT = "demo"
DOMAIN = "coding"
SHOWN_REJECTS = 5


def demo(count: int = 400) -> None:
    """Seed teacher traffic, import it, count the golden traces, and serve it over the API."""
    f = forge()
    s = f.settings
    where = (f"Azurite (pid {f.azurite.pid}, data in {s.home / 'azurite'})" if f.azurite
             else "the configured storage account")
    out.print(f"Storage: {where}", markup=False)

    started = utcnow()
    path = seed.write(s.home / "demo" / "traces.jsonl", count=count)
    out.print(f"1. Seeded {count} lines of teacher traffic for '{DOMAIN}' into {path} (forge.demo.seed).", markup=False)

    rejects: list[service.Reject] = []
    with open(path, "rb") as stream:
        summary = service.import_jsonl(f.storage, stream, tenant=TENANT, domain=DOMAIN, known_domains=f.domains,
                                       on_reject=rejects.append)
    out.print(f"2. Imported {summary.imported} traces; rejected {summary.rejected_total} lines:")
    for reject in rejects[:SHOWN_REJECTS]:
        out.print(f"     line {reject.line}: {reject.reason}: {reject.detail}", markup=False)
    if len(rejects) > SHOWN_REJECTS:
        out.print(f"     … and {len(rejects) - SHOWN_REJECTS} more")

    counts = service.count_golden(f.storage, TENANT, DOMAIN, s.min_score, since=started)
    out.print(f"3. Golden (score ≥ {s.min_score:g} or approved, never rejected): {counts.golden} of {counts.total}. "
              f"A run starts at {s.trigger_threshold} new golden traces (FORGE_TRIGGER_THRESHOLD), "
              f"so this one would be {'started' if counts.golden >= s.trigger_threshold else 'SKIPPED'}.")

    key, record = f.storage.keys.create(TENANT, "forge demo")
    try:
        with serving(create_app(f)) as url, httpx.Client(base_url=url, timeout=30) as http:
            health = http.get("/health")
            anonymous = http.get("/api/v1/traces")
            page = http.get("/api/v1/traces", params={"domain": DOMAIN, "limit": 5}, headers={"X-API-Key": key})
            out.print(f"4. API on {url}: /health → {health.status_code} {health.json()['status']}; "
                      f"/api/v1/traces without a key → {anonymous.status_code}; "
                      f"with the demo key → {page.status_code}, {len(page.json()['items'])} traces on the first page.",
                      markup=False)
    finally:
        f.storage.keys.revoke(TENANT, record.key_hash)
    out.print("5. Not built yet, so not run: curation, training, evaluation, promotion and the router "
              "(issues 3–7). Nothing above is a placeholder: every figure was computed in this run.")
    if f.azurite:
        out.print("Azurite keeps running for the next command; `forge storage stop` stops it.")
