"""The dashboard's server side over real HTTP: login → session cookie, CSRF on changes, revocation, logout, the
page and its headers, and the read endpoints only the dashboard needs (overview, domains, dataset checks)."""

from datetime import timedelta

import httpx
import pytest

from forge.api.app import create_app
from forge.api.server import serving
from forge.bootstrap import bootstrap
from forge.domain.models import utcnow
from tests.factories import make_job, make_trace, varied_lines


@pytest.fixture
def forge(settings, storage):
    return bootstrap(settings, storage=storage)


@pytest.fixture
def url(forge):
    with serving(create_app(forge)) as base:
        yield base


@pytest.fixture
def key(forge, tenant):
    return forge.storage.keys.create(tenant, "dashboard")[0]


def logged_in(url: str, key: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=30)
    response = client.post("/api/v1/session", json={"apiKey": key})
    assert response.status_code == 200, response.text
    return client, response.json()["csrfToken"]


def test_a_login_sets_an_httponly_strict_cookie_that_holds_no_key_and_acts_as_the_keys_tenant(url, key, tenant):
    client, csrf = logged_in(url, key)
    cookie = client.cookies.jar and next(iter(client.cookies.jar))
    header = client.post("/api/v1/session", json={"apiKey": key}).headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "secure" not in header  # plain http here
    assert key.split(".")[2] not in cookie.value and cookie.value.startswith(f"fs.{tenant}.")
    me = client.get("/api/v1/session").json()
    assert me["authenticated"] and me["tenant"] == tenant and me["scopes"] == ["read", "write"]
    assert client.get("/api/v1/forge/jobs").status_code == 200


def test_a_change_by_cookie_needs_the_sessions_csrf_token_and_a_key_in_a_header_needs_none(url, key, forge, tenant):
    [trace] = [make_trace(tenant)]
    forge.storage.traces.add([trace])
    client, csrf = logged_in(url, key)
    path = f"/api/v1/traces/{trace.id}/feedback"
    assert client.patch(path, json={"feedback": "approved"}).status_code == 403
    assert client.patch(path, json={"feedback": "approved"}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.patch(path, json={"feedback": "approved"}, headers={"X-CSRF-Token": csrf}).json()["feedback"] == "approved"
    plain = httpx.patch(f"{url}{path}", json={"feedback": "rejected"}, headers={"X-API-Key": key})
    assert plain.status_code == 200


def test_a_revoked_key_ends_its_session_at_the_next_request_and_logout_ends_it_for_good(url, key, forge, tenant):
    client, csrf = logged_in(url, key)
    forge.storage.keys.revoke(tenant, forge.storage.keys.authenticate(key).key_hash[:12])
    assert client.get("/api/v1/forge/jobs").status_code == 401
    assert client.get("/api/v1/session").json() == {"authenticated": False}

    fresh = forge.storage.keys.create(tenant, "again")[0]
    client, csrf = logged_in(url, fresh)
    stolen = dict(client.cookies)
    assert client.delete("/api/v1/session").status_code == 403  # logging out is a change: CSRF too
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert httpx.get(f"{url}/api/v1/forge/jobs", cookies=stolen).status_code == 401


def test_a_bad_key_is_refused_and_counts_towards_the_addresss_failure_limit_and_other_sites_cannot_log_in(url, key):
    cross = httpx.post(f"{url}/api/v1/session", json={"apiKey": key}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403 and "set-cookie" not in cross.headers
    for _ in range(10):
        assert httpx.post(f"{url}/api/v1/session", json={"apiKey": "fk.nobody.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}).status_code == 401
    assert httpx.post(f"{url}/api/v1/session", json={"apiKey": key}).status_code == 429


def test_the_page_and_its_files_are_served_with_a_self_only_policy_and_nothing_else_is(url):
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and '<script type="module" src="/dashboard/js/app.js">' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    script = httpx.get(f"{url}/dashboard/js/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    for bad in ("/dashboard/../../api/auth.py", "/dashboard/%2e%2e/__init__.py", "/dashboard/js/nothing.js"):
        assert httpx.get(f"{url}{bad}").status_code == 404


def test_the_overview_counts_traces_golden_traces_and_routed_requests_per_day_and_lists_failures(url, key, forge,
                                                                                                tenant):
    now = utcnow()
    yesterday = now - timedelta(days=1)
    forge.storage.traces.add([
        make_trace(tenant, created_at=yesterday, score=95.0),
        make_trace(tenant, created_at=yesterday, score=10.0),
        make_trace(tenant, created_at=now, feedback="approved", source="router", model="gpt-4.1",
                   prompt_tokens=1000, completion_tokens=1000),
    ])
    forge.storage.jobs.create(make_job(tenant, status="FAILED", error="trainer ran out of memory"))
    body = httpx.get(f"{url}/api/v1/insights/overview", params={"days": 3}, headers={"X-API-Key": key}).json()
    coding = next(d for d in body["domains"] if d["domain"] == "coding")
    assert [(d["traces"], d["golden"]) for d in coding["days"]] == [(0, 0), (2, 1), (1, 1)]
    assert coding["days"][-1]["requests"] == {"teacher": 1} and coding["savingUsd"] == 0
    assert coding["lastJob"]["status"] == "FAILED"
    assert body["alerts"][0]["kind"] == "job.failed" and "out of memory" in body["alerts"][0]["message"]
    domains = httpx.get(f"{url}/api/v1/insights/domains", headers={"X-API-Key": key}).json()["items"]
    assert "coding" in [d["name"] for d in domains] and "min_score" in domains[0]["gates"]


def test_a_checked_file_lists_each_bad_line_and_stores_nothing_and_an_uploads_rejects_keep_their_lines(url, key):
    body = "\n".join(varied_lines(12, score=None)) + "\n{broken\n" + '{"messages": []}\n'
    auth = {"X-API-Key": key}
    checked = httpx.post(f"{url}/api/v1/datasets/check", params={"format": "jsonl"}, content=body, headers=auth,
                         timeout=60).json()
    assert checked["uploadable"] and checked["train"] + checked["valid"] == 12
    assert [(r["line"], r["reason"]) for r in checked["rejects"]][0] == (13, "invalid_json")
    assert {r["line"] for r in checked["rejects"]} == {13, 14}
    assert httpx.get(f"{url}/api/v1/datasets", headers=auth).json()["items"] == []
    made = httpx.post(f"{url}/api/v1/datasets", params={"format": "jsonl"}, content=body, headers=auth, timeout=60)
    rejects = httpx.get(f"{url}/api/v1/datasets/{made.json()['datasetId']}/rejects", headers=auth).json()
    assert {r["line"] for r in rejects["items"]} == {13, 14}
    too_few = httpx.post(f"{url}/api/v1/datasets/check", params={"format": "jsonl"}, content="{x\n", headers=auth).json()
    assert not too_few["uploadable"] and "more are needed" in too_few["problem"]


def test_over_https_the_cookie_is_secure_and_a_read_only_keys_session_cannot_change_anything(url, forge, tenant):
    reader = forge.storage.keys.create(tenant, "reader", ["read"])[0]
    trace = make_trace(tenant)
    forge.storage.traces.add([trace])
    client = httpx.Client(base_url=url, timeout=30)
    login = client.post("/api/v1/session", json={"apiKey": reader}, headers={"X-Forwarded-Proto": "https"})
    assert "; secure" in login.headers["set-cookie"].lower()
    client.cookies.set("forge_session", login.cookies["forge_session"])  # httpx keeps Secure cookies for https only
    csrf = login.json()["csrfToken"]
    assert client.get("/api/v1/traces").status_code == 200
    changed = client.patch(f"/api/v1/traces/{trace.id}/feedback", json={"feedback": "approved"},
                           headers={"X-CSRF-Token": csrf})
    assert changed.status_code == 403 and "'write' scope" in changed.json()["detail"]
