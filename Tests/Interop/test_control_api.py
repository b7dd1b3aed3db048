"""The control plane's REST API against its own description: hand-written
cases for the error contract (422 with `fields`, 401, 403, 404), then
schemathesis generating requests from https://127.0.0.1:PORT/openapi.json,
once with an owner's bearer token and once with a staff admin's, asserting
that nothing answers with a server error and that the responses match the
schemas the document declares.

Bounded: SCHEMATHESIS_MAX_EXAMPLES per operation (default 30; about 1000
requests and 20 s per run) and SCHEMATHESIS_MAX_TIME seconds per run at most
(default 300). Reports land in artifacts/schemathesis/. Runs on SQLite, and on
PostgreSQL when POSTCELL_TEST_POSTGRES_URL is set. Everything is on
127.0.0.1."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from helpers_control import (  # noqa: F401 - control_plane is a fixture
    API, ROOT, Panel, control_plane, csrf_of, signup_tenant, staff_api, start_control_plane, stop_control_plane, strong_password,
)

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"))
MAX_TIME = int(os.environ.get("SCHEMATHESIS_MAX_TIME", "300"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "20291")

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(scope="module")
def tokens(control_plane):
    """Tokens made before any fuzzing: failed logins from the fuzzer count
    against 127.0.0.1 and would lock out later logins."""
    owner = signup_tenant(control_plane)
    owner.add_mailbox("fuzz")
    return {"owner": owner, "staff": staff_api(control_plane)}


# MARK: hand-written cases

def test_openapi_document_is_served(control_plane):
    r = API(control_plane).get("/openapi.json")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert json.loads((ROOT / "templates" / "api" / "openapi.json").read_text()) == doc


def test_malformed_json_is_422(control_plane, tokens):
    api = API(control_plane)
    for path, token in (("/api/v1/signup", ""), ("/api/v1/tokens", ""), ("/api/v1/password-check", ""),
                        ("/api/v1/mailboxes", tokens["owner"].api.token), ("/api/v1/aliases", tokens["owner"].api.token)):
        wrong_type = b'{"targets": "not-a-list"}' if path.endswith("aliases") else b'{"password": 5}'
        for raw in (b"{not json", b"[1, 2]", wrong_type, b"\xff\xfe", b"null"):
            r = api.call("POST", path, raw=raw, token=token)
            assert r.status_code == 422, (path, raw, r.status_code, r.text)
            assert isinstance(r.json()["error"], str) and r.json()["error"]
    r = api.call("POST", "/api/v1/signup", raw=b"", token="")
    assert r.status_code == 422


def test_missing_fields_are_422_with_fields(control_plane, tokens):
    api = API(control_plane)
    r = api.post("/api/v1/signup", {})
    assert r.status_code == 422, r.text
    assert {"email", "slug", "name", "plan", "password"} <= set(r.json()["fields"]), r.json()
    r = api.post("/api/v1/signup", {"email": "x@y.example", "name": "X", "plan": "family", "password": strong_password()})
    assert r.status_code == 422 and set(r.json()["fields"]) == {"slug"}, r.json()
    owner = tokens["owner"].api
    r = owner.post("/api/v1/mailboxes", {"local": "nopass"})
    assert r.status_code == 422 and "password" in r.json()["fields"], r.json()
    r = owner.post("/api/v1/mailboxes", {"password": strong_password()})
    assert r.status_code == 422 and "local" in r.json()["fields"], r.json()
    r = owner.post("/api/v1/aliases", {"local": "team"})
    assert r.status_code == 422 and "targets" in r.json()["fields"], r.json()
    r = tokens["staff"].post(f"/api/v1/staff/tenants/{tokens['owner'].id}/suspend", {})
    assert r.status_code == 422 and "reason" in r.json()["fields"], r.json()
    assert tokens["staff"].get(f"/api/v1/staff/tenants/{tokens['owner'].id}").json()["tenant"]["status"] == "active"


def test_unknown_route_is_404(control_plane, tokens):
    api = API(control_plane)
    for path in ("/api/v1/nope", "/api/v2/plans", "/api/v1/staff/tenants/t-nope/frobnicate"):
        assert api.get(path).status_code == 404, path
        assert api.get(path, token=tokens["owner"].api.token).status_code == 404, path
    r = tokens["staff"].get("/api/v1/staff/tenants/t-does-not-exist")
    assert r.status_code == 404 and r.json()["error"]


def test_no_token_is_401(control_plane):
    api = API(control_plane)
    for method, path in (("GET", "/api/v1/me"), ("GET", "/api/v1/cell"), ("GET", "/api/v1/mailboxes"),
                         ("POST", "/api/v1/mailboxes"), ("GET", "/api/v1/aliases"), ("GET", "/api/v1/staff/fleet"),
                         ("GET", "/api/v1/staff/tenants"), ("GET", "/api/v1/staff/audit"),
                         ("POST", "/api/v1/staff/tenants/t-x/suspend")):
        r = api.call(method, path, {"reason": "x"} if method == "POST" else None, token="")
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"]
    # A made-up token is no token; a session cookie is not accepted by the API.
    assert api.get("/api/v1/me", token="pc_" + "A" * 43).status_code == 401
    r = api.get("/api/v1/me", headers={"Cookie": "__Host-postcell=" + "A" * 43})
    assert r.status_code == 401


def test_a_token_does_not_drive_the_panels(control_plane, tokens):
    """Bearer tokens are for /api/v1 only: with one, the panels act as if
    nobody were logged in (a stolen token cannot enrol its own TOTP)."""
    token = tokens["owner"].api.token
    p = Panel(control_plane)
    headers = {"Authorization": "Bearer " + token}
    r = p.get("/panel", headers=headers, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/login", (r.status_code, r.headers.get("Location"))
    page = p.get("/login")
    r = p.post("/account/totp/begin", {"csrf": csrf_of(page.text)}, headers=headers, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/login", r.status_code
    me = tokens["owner"].api.get("/api/v1/me").json()
    assert me["totp"] is False


def test_owner_on_staff_routes_is_403(control_plane, tokens):
    owner = tokens["owner"].api
    tid = tokens["owner"].id
    for method, path in (("GET", "/api/v1/staff/fleet"), ("GET", "/api/v1/staff/tenants"), ("GET", f"/api/v1/staff/tenants/{tid}"),
                         ("POST", f"/api/v1/staff/tenants/{tid}/suspend"), ("POST", f"/api/v1/staff/tenants/{tid}/resume"),
                         ("POST", f"/api/v1/staff/tenants/{tid}/delete"), ("GET", "/api/v1/staff/audit")):
        r = owner.call(method, path, {"reason": "owner tries"} if method == "POST" else None)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
    assert tokens["staff"].get(f"/api/v1/staff/tenants/{tid}").json()["tenant"]["status"] == "active"
    # Staff have no tenant of their own.
    assert tokens["staff"].get("/api/v1/mailboxes").status_code in (403, 404)


def test_tokens_are_listed_and_revoked_by_their_owner(control_plane):
    t = signup_tenant(control_plane)
    api = API(control_plane)
    laptop = api.token_for(t.email, t.password)
    r = t.api.get("/api/v1/tokens")
    assert r.status_code == 200, r.text
    listed = r.json()
    assert [x["name"] for x in listed] == ["e2e", "e2e"], listed
    assert all(x["id"].startswith("tok-") and x["expiresAt"] - x["createdAt"] == 90 * 86400 for x in listed), listed
    assert laptop not in r.text and t.api.token not in r.text
    # The token in use was just used; the other one not yet.
    assert sum("lastUsedAt" in x for x in listed) == 1, listed
    in_use = next(x["id"] for x in listed if "lastUsedAt" in x)
    other = next(x["id"] for x in listed if x["id"] != in_use)

    # Another owner gets 404 for it, and it keeps working.
    stranger = signup_tenant(control_plane)
    assert stranger.api.call("DELETE", f"/api/v1/tokens/{other}").status_code == 404
    assert api.get("/api/v1/me", token=laptop).status_code == 200
    assert t.api.call("DELETE", "/api/v1/tokens/tok-nope").status_code == 404
    assert api.call("DELETE", f"/api/v1/tokens/{other}", token="").status_code == 401

    # Revoked: refused at once; the token that revoked it still works, and can revoke itself.
    assert t.api.call("DELETE", f"/api/v1/tokens/{other}").status_code == 204
    assert api.get("/api/v1/me", token=laptop).status_code == 401
    assert [x["id"] for x in t.api.get("/api/v1/tokens").json()] == [in_use]
    assert t.api.call("DELETE", f"/api/v1/tokens/{in_use}").status_code == 204
    assert t.api.get("/api/v1/me").status_code == 401
    log = staff_api(control_plane).get(f"/api/v1/staff/audit?tenant={t.id}&action=token.revoke").json()
    assert sorted(e["target"] for e in log) == sorted([other, in_use]), log


def test_signups_from_one_address_are_limited():
    """A control plane of its own with the default limit (5 an hour per
    address): the sixth sign-up from 127.0.0.1 is refused with 429 and
    Retry-After, in the API and the form, and sends no mail; invalid
    sign-ups are not counted."""
    tmp = tempfile.mkdtemp(prefix="postcell-e2e-")
    os.chmod(tmp, 0o711)
    cp = start_control_plane(tmp, "sqlite", demo=False)
    try:
        api = API(cp)

        def signup(slug):
            return api.post("/api/v1/signup", {"email": f"owner@{slug}.example", "password": strong_password(),
                                               "name": "Limited", "slug": slug, "plan": "family-mini"})
        for i in range(5):
            assert signup(f"limited{i}").status_code == 201
            assert api.post("/api/v1/signup", {"email": "not an address", "password": "x", "name": "n", "slug": f"bad{i}",
                                               "plan": "family-mini"}).status_code == 422
        r = signup("limited5")
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["Retry-After"]) <= 3600 and "sign-ups" in r.json()["error"]
        r = Panel(cp).signup("owner@limited6.example", strong_password(), "limited6")
        assert r.status_code == 429 and "Too many sign-ups" in r.text and 1 <= int(r.headers["Retry-After"]) <= 3600
        sent = " ".join(p.read_text(errors="replace") for p in (cp.state / "outbox").glob("*.eml"))
        assert "owner@limited4.example" in sent
        assert "owner@limited5.example" not in sent and "owner@limited6.example" not in sent
        assert api.get("/api/v1/plans").status_code == 200
    finally:
        try:
            stop_control_plane(cp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def test_owner_cannot_reach_another_tenant(control_plane, tokens):
    other = signup_tenant(control_plane)
    addr, _ = other.add_mailbox("private")
    owner = tokens["owner"].api
    assert owner.get(f"/api/v1/mailboxes/{addr}/setup").status_code == 404
    assert owner.call("PUT", f"/api/v1/mailboxes/{addr}/password", {"password": strong_password()}).status_code == 404
    assert owner.call("DELETE", f"/api/v1/mailboxes/{addr}").status_code == 404
    assert owner.post("/api/v1/aliases", {"local": "steal", "targets": [addr]}).status_code == 422
    assert addr in [m["address"] for m in other.api.get("/api/v1/mailboxes").json()]


def test_nul_bytes_in_input_are_client_errors(request, control_plane, tokens):
    staff, api = tokens["staff"], API(control_plane)
    results = {
        "audit?tenant": staff.get("/api/v1/staff/audit?tenant=%00").status_code,
        "audit?action": staff.get("/api/v1/staff/audit?action=x%00").status_code,
        "tenants?q": staff.get("/api/v1/staff/tenants?q=%00").status_code,
        "tokens": api.post("/api/v1/tokens", {"email": "a\u0000@b.example", "password": "x"}).status_code,
        "signup": api.post("/api/v1/signup", {"email": "a@b.example", "password": strong_password(), "name": "n",
                                              "slug": "nulplan", "plan": "\u0000"}).status_code,
    }
    from helpers_control import Panel
    results["form login"] = Panel(control_plane).login("x\u0000@y.example", "pw").status_code
    p = Panel(control_plane)
    assert p.login(*control_plane.staff).status_code == 303
    results["staff search page"] = p.get("/staff/tenants?q=%00").status_code
    assert all(code < 500 for code in results.values()), results


# MARK: schemathesis

def schemathesis_cli():
    exe = shutil.which("schemathesis") or shutil.which("st")
    if exe:
        return [exe]
    pytest.importorskip("schemathesis")
    return [sys.executable, "-m", "schemathesis.cli"]


def run_schemathesis(cp, token, name, tmp_path, checks):
    report = tmp_path / f"{name}.xml"
    args = schemathesis_cli() + [
        "run", cp.url + "/openapi.json", "--url", cp.url,
        "--checks", ",".join(checks),
        "--max-examples", str(MAX_EXAMPLES), "--seed", SEED,
        "--phases", "examples,coverage,fuzzing", "--workers", "1",
        "--tls-verify", "false", "--request-timeout", "30", "--max-redirects", "0",
        "--header", f"Authorization: Bearer {token}",
        "--report", "junit", "--report-junit-path", str(report),
        "--suppress-health-check", "all", "--generation-database", "none", "--no-color",
        # NUL bytes are left out: on PostgreSQL they are a known bug with a
        # test of its own (test_nul_bytes_in_input_are_client_errors).
        "--generation-allow-x00", "false",
    ]
    env = dict(os.environ, NO_PROXY="*", no_proxy="*", SCHEMATHESIS_TELEMETRY="false")
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    out = subprocess.run(args, capture_output=True, text=True, timeout=MAX_TIME, env=env, cwd=tmp_path)
    text = out.stdout + out.stderr
    artifacts = ROOT / "artifacts" / "schemathesis"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / f"{name}-{cp.backend}.txt").write_text(text)
    if report.exists():
        shutil.copy(report, artifacts / f"{name}-{cp.backend}.xml")
    return out.returncode, text, report


# One run per token with every check; the two tests below read its result.
# The owner's run goes first: the admin's run learns real tenant ids from
# the responses (GET /staff/tenants) and suspends and deletes them, which an
# admin may do, so it runs last in the module.
_runs = {}


def schemathesis_result(cp, tokens, who, tmp_path_factory):
    key = (cp.backend, who)
    if key not in _runs:
        token = tokens["owner"].api.token if who == "owner" else tokens["staff"].token
        d = tmp_path_factory.mktemp(f"schemathesis-{who}")
        _runs[key] = run_schemathesis(cp, token, who, d, ["not_a_server_error", "response_schema_conformance",
                                                          "status_code_conformance", "content_type_conformance"])
    return _runs[key]


FAILURE_TITLES = ("Server error", "Response violates schema", "Undocumented HTTP status code",
                  "Undocumented Content-Type", "Malformed media type", "Missing Content-Type")


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_schemathesis_no_server_errors(control_plane, tokens, tmp_path_factory, who):
    rc, text, _ = schemathesis_result(control_plane, tokens, who, tmp_path_factory)
    operations = sum(len(ops) for ops in json.loads((ROOT / "templates" / "api" / "openapi.json").read_text())["paths"].values())
    assert re.search(rf"Tested:\s+{operations}\b", text), text[-3000:]
    assert re.search(r"\d+ generated", text), text[-3000:]
    assert "Server error" not in text, "schemathesis found server errors:\n" + text[-8000:]
    if rc != 0:
        # Only schema findings (the next test) may fail the run; anything
        # else (a network error: the server died) fails here.
        assert any(t in text for t in FAILURE_TITLES), text[-8000:]
    # The control plane is still serving afterwards; the owner's token still
    # worked through the owner's whole run.
    assert API(control_plane).get("/api/v1/plans").status_code == 200
    if who == "owner":
        assert tokens["owner"].api.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_schemathesis_responses_match_the_schema(control_plane, tokens, tmp_path_factory, who):
    rc, text, _ = schemathesis_result(control_plane, tokens, who, tmp_path_factory)
    assert rc == 0, "responses that do not match openapi.json:\n" + text[-8000:]
