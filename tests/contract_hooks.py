"""Schemathesis hooks for the API conformance test (tests/integration/test_api_contract.py), loaded by
`schemathesis run` through SCHEMATHESIS_HOOKS. The test writes the objects it created (ids of a job, a dataset, a
model, a trace, a domain) and the webhook secret to the JSON file named by FORGE_CONTRACT_FIXTURES.

* A path id that is well formed is swapped, every other time, for the id of a real object of the same kind, so the
  id-bearing operations are reached past their 404 (a malformed id is left alone: it is meant to be refused).
* An OpenAI webhook whose three signature headers were generated is signed for real (the id made unique, the
  timestamp now), so deliveries get past the signature check; one missing a header stays unsigned and is refused.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from functools import cache
from typing import Any

import schemathesis

from forge.domain import ids
from forge.domain.webhooks import sign

FORMATS = {"job_id": ids.JOB, "dataset_id": ids.DATASET, "version_id": ids.MODEL, "trace_id": ids.TRACE,
           "name": ids.DOMAIN}
_turns = itertools.count()
_deliveries = itertools.count()


@cache
def fixtures() -> dict[str, Any]:
    with open(os.environ["FORGE_CONTRACT_FIXTURES"], encoding="utf-8") as file:
        return json.load(file)


@schemathesis.hook
def map_path_parameters(context: Any, path_parameters: dict[str, Any]) -> dict[str, Any]:
    if not path_parameters or next(_turns) % 2:
        return path_parameters
    real = fixtures()["ids"]
    mapped = dict(path_parameters)
    for name, value in path_parameters.items():
        known = FORMATS.get(name)
        if name in real and known is not None and known.valid(value):
            mapped[name] = real[name]
    return mapped


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.path != "/api/v1/webhooks/openai" or case.method.upper() != "POST":
        return
    headers = case.headers or {}
    if not all(isinstance(headers.get(h), str) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")):
        return
    # The bytes `requests` sends for a JSON body (schemathesis passes it as `json=`): what the sender signs.
    if isinstance(case.body, bytes):
        body = case.body
    elif isinstance(case.body, (dict, list, str, int, float, bool)) or case.body is None:
        body = json.dumps(case.body, allow_nan=False).encode()
    else:  # no body at all
        body = b""
    delivery, stamp = f"msg_contract_{os.getpid()}_{next(_deliveries)}", str(int(time.time()))
    headers.update({"webhook-id": delivery, "webhook-timestamp": stamp,
                    "webhook-signature": sign(fixtures()["openai_webhook_secret"], delivery, stamp, body)})
