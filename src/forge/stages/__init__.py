"""Activities, one module per verb: gather, curate, upload, train, poll, evaluate, promote, notify.

Each takes the orchestrator's small JSON payload (tenant, domain, job_id, provider, …), is idempotent by job
id, and returns small JSON. Permanent failures come back as {"error": reason}; transient ones raise (retried).
"""
