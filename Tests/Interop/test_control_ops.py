"""The control plane's "Show it" for operations (docs/CONTROL-PLANE.md,
docs/PROVISIONING.md): a cell killed with SIGKILL is restarted by the
reconciler and the staff views count the restart; with the control plane
stopped the cell keeps receiving and serving mail, and a restarted control
plane adopts it without starting a second engine; CSRF, cookie flags, login
throttling (API and form), the support role, and the audit log of staff
actions (panel and API).

Runs on SQLite, and on PostgreSQL when POSTCELL_TEST_POSTGRES_URL is set.
Everything is on 127.0.0.1. The login-throttle test runs last: failures from
127.0.0.1 count towards the per-address limit of this control plane."""
import html
import os
import pathlib
import re
import signal
import subprocess
import time

import pyotp
import pytest

from helpers_control import (  # noqa: F401 - control_plane is a fixture
    API, POSTCELL, ROOT, Kicker, Panel, cgroup_procs, cmdline, body_of, control_plane, csrf_of, imaps_login, make_message, mx_send, pid_alive,
    port_answers, signup_tenant, staff_api, strong_password, unique, wait_for, wait_imaps, wait_message,
)

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(scope="module")
def tenant(control_plane):
    t = signup_tenant(control_plane, plan="family")
    t.anna = t.add_mailbox("anna")
    t.port = t.ports(t.anna[0])
    wait_imaps(t.port["imaps"], *t.anna, timeout=40)
    return t


@pytest.fixture(scope="module")
def staff(control_plane):
    return staff_api(control_plane)


def cell_detail(staff, tenant):
    r = staff.get(f"/api/v1/staff/tenants/{tenant.id}")
    assert r.status_code == 200, r.text
    return r.json()["cell"]


def test_killed_cell_is_restarted_by_the_reconciler(control_plane, tenant, staff):
    # Let the reconciler (every 2 s) apply the spec with the mailbox first:
    # a crash right after a change is the next test's subject.
    time.sleep(2.5)
    run = control_plane.cell_run(tenant.cell_id)
    [engine] = run.engine_pids()
    before = cell_detail(staff, tenant)["restarts"]
    os.kill(engine, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(lambda: not pid_alive(engine), 5, what="engine gone")

    def serving():
        c = imaps_login(tenant.port["imaps"], *tenant.anna, timeout=3)
        c.select("INBOX")
        c.logout()
        return True
    wait_for(serving, 15, interval=0.25, what="IMAP served again")
    elapsed = time.monotonic() - t0
    assert elapsed < 12, f"IMAP came back only after {elapsed:.1f}s"
    run = control_plane.cell_run(tenant.cell_id)
    [again] = run.engine_pids()
    assert again != engine
    cell = wait_for(lambda: (c := cell_detail(staff, tenant)) and c["restarts"] >= before + 1 and c["healthy"] and c,
                    15, what="restart counted")
    assert cell["restarts"] >= 1 and cell["observedPhase"] == "running"
    # bwrap reports its child's SIGKILL as exit 128+9.
    assert cell.get("lastExit") in ("signal 9", "exit 137"), cell
    # The staff panel shows it too, on the tenant page and in the fleet.
    p = Panel(control_plane)
    assert p.login(*control_plane.staff).status_code == 303
    page = p.get(f"/staff/tenants/{tenant.id}").text
    m = re.search(r'<dd id="staff-cell">(.*?)</dd>', page, re.S)
    assert m and re.search(r"restarts ([1-9]\d*)", m.group(1)), m and m.group(1)
    fleet = p.get("/staff").text
    assert re.search(r'data-phase="running">([1-9]\d*)<', fleet), fleet
    # The owner's dashboard shows the restarts as well.
    o = Panel(control_plane)
    assert o.login(tenant.email, tenant.password).status_code == 303
    dash = o.get("/panel").text
    assert re.search(r"<dt>Restarts</dt><dd>[1-9]", dash)


def test_a_change_just_before_a_crash_survives_the_restart(control_plane):
    # Two fresh cells (a cell's first restart waits 1 s, less than the
    # reconciler's interval), each crashed right after a change that reached
    # it, just after a reconciler round.
    for _ in range(2):
        t = signup_tenant(control_plane)
        first = t.add_mailbox("first")
        port = t.ports(first[0])
        wait_imaps(port["imaps"], *first, timeout=40)
        kicker = Kicker(control_plane)
        run = control_plane.cell_run(t.cell_id)
        [engine] = run.engine_pids()
        kicker.kick()
        box, pw = t.add_mailbox("late")
        # The change reached the running cell (the engine wrote its cell.json)...
        assert box in pathlib.Path(run.data_directory, "cell.json").read_text()
        wait_imaps(port["imaps"], box, pw, timeout=5)
        # ...and the cell crashes before the reconciler's next round.
        os.kill(engine, signal.SIGKILL)
        wait_for(lambda: not pid_alive(engine), 5, what="engine gone")
        # Restarted, it must still know the mailbox.
        wait_imaps(port["imaps"], box, pw, timeout=12)
        message, expected = make_message(box, unique("after-crash-"))
        assert mx_send(port["mx"], [box], message) == {}


def test_cells_keep_mail_flowing_without_the_control_plane_and_are_adopted(control_plane, tenant, staff):
    addr, pw = tenant.anna
    run = control_plane.cell_run(tenant.cell_id)
    engines = run.engine_pids()
    assert len(engines) == 1

    assert control_plane.stop(signal.SIGTERM) == 0, control_plane.stderr()
    try:
        headless(control_plane, tenant, run, engines)
    finally:
        control_plane.start()
    # Adopted: the same engine process, no second one, now or after a few
    # reconciler rounds (every 2 s).
    for _ in range(3):
        time.sleep(2)
        run = control_plane.cell_run(tenant.cell_id)
        assert run.engine_pids() == engines
        # Exactly one engine in the cell's cgroup (its name is this cell's alone).
        assert [p for p in cgroup_procs(run.cgroups()["unified"]) if cmdline(p)[:1] == ["/engine"]] == engines
    cell = wait_for(lambda: (c := cell_detail(staff, tenant)) and c["healthy"] and c, 15, what="adopted cell healthy")
    assert cell["observedPhase"] == "running"
    # And changes reach the adopted cell through its admin API.
    new_box, new_pw = tenant.add_mailbox(unique("late"))
    wait_imaps(tenant.port["imaps"], new_box, new_pw, timeout=15)


def headless(control_plane, tenant, run, engines):
    """With the control plane stopped: mail flows, and a support user is added."""
    addr, pw = tenant.anna
    assert not port_answers(control_plane.port), "the panel is down"
    # Mail keeps flowing: MX takes it, IMAP serves it.
    subject = unique("headless-")
    message, expected = make_message(addr, subject)
    assert mx_send(tenant.port["mx"], [addr], message) == {}
    [raw] = wait_message(tenant.port["imaps"], addr, pw, subject)
    assert body_of(raw) == expected
    assert run.engine_pids() == engines and all(pid_alive(p) for p in engines)

    # A support user added while the control plane is stopped (same database).
    support_email = f"support-{unique('')}@postcell.test"
    support_pw = strong_password()
    args = [POSTCELL, "staff-add", "--state", str(control_plane.state), "--email", support_email, "--role", "support"]
    if control_plane.database_url:
        args += ["--database", control_plane.database_url]
    out = subprocess.run(args, cwd=ROOT, input=support_pw + "\n", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"added {support_email} (support)" in out.stdout
    control_plane.support = (support_email, support_pw)


def test_csrf_is_required_and_a_refused_post_changes_nothing(control_plane, tenant):
    p = Panel(control_plane)
    assert p.login(tenant.email, tenant.password).status_code == 303
    before = {m["address"] for m in tenant.api.get("/api/v1/mailboxes").json()}
    data = {"local": "csrfvictim", "displayName": "x", "password": strong_password()}
    r = p.post("/panel/mailboxes", data)
    assert r.status_code == 403, r.status_code
    r = p.post("/panel/mailboxes", {**data, "csrf": "forged" + "0" * 40})
    assert r.status_code == 403
    # A token of another session is no good either.
    other = Panel(control_plane)
    assert other.login(tenant.email, tenant.password).status_code == 303
    foreign = csrf_of(other.get("/panel").text)
    assert p.post("/panel/mailboxes", {**data, "csrf": foreign}).status_code == 403
    after = {m["address"] for m in tenant.api.get("/api/v1/mailboxes").json()}
    assert after == before
    # Owner password change and logout without the token change nothing either.
    assert p.post("/account/password", {"current": tenant.password, "password": strong_password()}).status_code == 403
    assert Panel(control_plane).login(tenant.email, tenant.password).status_code == 303
    # Logged out: the double-submit cookie must match.
    anon = Panel(control_plane)
    anon.get("/login")
    r = anon.post("/login", {"email": tenant.email, "password": tenant.password, "csrf": "x" * 43}, allow_redirects=False)
    assert r.status_code == 403 and "__Host-postcell=" not in r.headers.get("Set-Cookie", "")
    # With the token it works (the control: the refusals above were about CSRF).
    r = p.form("/panel", "/panel/mailboxes", data, allow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    assert "csrfvictim@" + tenant.domain in {m["address"] for m in tenant.api.get("/api/v1/mailboxes").json()}


def test_staff_post_without_csrf_is_refused(control_plane, tenant, staff):
    p = Panel(control_plane)
    assert p.login(*control_plane.staff).status_code == 303
    r = p.post(f"/staff/tenants/{tenant.id}/suspend", {"reason": "no token"})
    assert r.status_code == 403
    assert staff.get(f"/api/v1/staff/tenants/{tenant.id}").json()["tenant"]["status"] == "active"


def test_cookies_and_security_headers(control_plane, tenant):
    p = Panel(control_plane)
    r = p.get("/login")
    csrf_cookie = r.headers["Set-Cookie"]
    assert csrf_cookie.startswith("__Host-postcell-csrf=")
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in csrf_cookie.split(";")[1:]}
    assert "secure" in attrs and "httponly" in attrs and attrs["samesite"].lower() == "samesite=strict"
    r = p.post("/login", {"email": tenant.email, "password": tenant.password, "csrf": csrf_of(r.text)}, allow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("__Host-postcell=")
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert "secure" in attrs, cookie
    assert "httponly" in attrs, cookie
    assert attrs.get("samesite", "").lower() in ("samesite=lax", "samesite=strict"), cookie
    assert attrs.get("path") == "Path=/" and "domain" not in attrs, cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 40
    page = p.get("/panel")
    assert page.status_code == 200
    h = page.headers
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"] and "script-src 'self'" in h["Content-Security-Policy"]
    assert "unsafe-inline" not in h["Content-Security-Policy"]
    assert h["Strict-Transport-Security"].startswith("max-age=")
    assert h["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in h["Cache-Control"]
    # The session id is not in the page, and logging out ends it server-side.
    assert value not in page.text
    r = p.post("/logout", {"csrf": csrf_of(page.text)}, allow_redirects=False)
    assert r.status_code == 303
    stale = Panel(control_plane)
    stale.s.cookies.set("__Host-postcell", value, domain="127.0.0.1", path="/", secure=True)
    r = stale.get("/panel", allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/login"


def test_support_reads_but_cannot_suspend(control_plane, tenant, staff):
    support_email, support_pw = control_plane.support
    sup = API(control_plane).as_user(support_email, support_pw)
    me = sup.get("/api/v1/me").json()
    assert me["role"] == "support"
    r = sup.get(f"/api/v1/staff/tenants/{tenant.id}")
    assert r.status_code == 200 and r.json()["tenant"]["slug"] == tenant.slug
    assert tenant.anna[0] in [m["address"] for m in r.json()["mailboxes"]]
    assert "password" not in r.text.lower() and "$scrypt$" not in r.text
    assert sup.get(f"/api/v1/staff/tenants?q={tenant.slug}").json()[0]["id"] == tenant.id
    assert sup.get("/api/v1/staff/audit").status_code == 200
    for action, body in (("suspend", {"reason": "support tries"}), ("resume", None), ("delete", {"reason": "support tries"}),
                         ("plan", {"plan": "club"})):
        r = sup.post(f"/api/v1/staff/tenants/{tenant.id}/{action}", body or {})
        assert r.status_code == 403, (action, r.status_code, r.text)
    assert staff.get(f"/api/v1/staff/tenants/{tenant.id}").json()["tenant"]["status"] == "active"
    # The panel: the tenant page has no actions, and a suspend form post is refused.
    p = Panel(control_plane)
    assert p.login(support_email, support_pw).status_code == 303
    page = p.get(f"/staff/tenants/{tenant.id}")
    assert page.status_code == 200 and tenant.slug in page.text
    assert 'id="suspend"' not in page.text and 'id="actions"' not in page.text and 'id="staff-plan"' not in page.text
    r = p.post(f"/staff/tenants/{tenant.id}/suspend", {"csrf": csrf_of(page.text), "reason": "support tries"})
    assert r.status_code == 403
    assert staff.get(f"/api/v1/staff/tenants/{tenant.id}").json()["tenant"]["status"] == "active"
    # Support cannot act as the owner either.
    assert sup.post("/api/v1/mailboxes", {"local": "sneaky", "password": strong_password()}).status_code in (403, 404)


def test_admin_changes_a_tenants_plan_in_the_staff_panel(control_plane, staff):
    t = signup_tenant(control_plane)
    p = Panel(control_plane)
    assert p.login(*control_plane.staff).status_code == 303
    r = p.form(f"/staff/tenants/{t.id}", f"/staff/tenants/{t.id}/plan", {"plan": "no-such-plan"})
    assert r.status_code == 422 and 'id="plan-error"' in r.text
    r = p.form(f"/staff/tenants/{t.id}", f"/staff/tenants/{t.id}/plan", {"plan": "club"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == f"/staff/tenants/{t.id}?done=plan-changed", r.status_code
    assert t.api.get("/api/v1/me").json()["tenant"]["plan"] == "club"
    assert "The plan was changed." in p.get(r.headers["Location"]).text
    log = staff.get(f"/api/v1/staff/audit?tenant={t.id}&action=tenant.plan").json()
    assert [(e["actorEmail"], e["detail"]) for e in log] == [(control_plane.staff[0], "family-mini → club")], log
    # The API does the same, and answers with the tenant.
    r = staff.post(f"/api/v1/staff/tenants/{t.id}/plan", {"plan": "family"})
    assert r.status_code == 200 and r.json()["plan"] == "family", r.text


def test_admin_turns_off_a_lost_second_factor(control_plane, staff):
    t = signup_tenant(control_plane)
    owner = Panel(control_plane)
    assert owner.login(t.email, t.password).status_code == 303
    page = owner.form("/account", "/account/totp/begin", {})
    secret = re.search(r'data-secret="([A-Z2-7]+)"', page.text).group(1)
    r = owner.form("/account", "/account/totp/enable", {"code": pyotp.TOTP(secret).now()}, allow_redirects=False)
    assert r.status_code == 303, r.status_code
    assert t.api.get("/api/v1/me").json()["totp"] is True

    admin = Panel(control_plane)
    assert admin.login(*control_plane.staff).status_code == 303
    page = admin.get(f"/staff/tenants/{t.id}")
    assert 'id="totp-off-form"' in page.text and t.email in page.text
    r = admin.form(f"/staff/tenants/{t.id}", f"/staff/tenants/{t.id}/totp-off", {"owner": t.email, "totpReason": ""})
    assert r.status_code == 422 and 'id="totp-reason-error"' in r.text and 'id="reason-error"' not in r.text
    r = admin.form(f"/staff/tenants/{t.id}", f"/staff/tenants/{t.id}/totp-off",
                   {"owner": t.email, "totpReason": "called back on the number on file"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].endswith("?done=owner-totp-off"), r.status_code
    # The owner's session and token have ended; the password alone logs in now.
    assert not owner.logged_in()
    assert t.api.get("/api/v1/me").status_code == 401
    again = Panel(control_plane)
    r = again.login(t.email, t.password)
    assert r.status_code == 303 and r.headers["Location"] == "/panel", r.headers.get("Location")
    assert 'id="totp-off-form"' not in admin.get(f"/staff/tenants/{t.id}").text
    told = [p for p in (control_plane.state / "outbox").glob("*.eml")
            if t.email in p.read_text(errors="replace") and "Two-factor authentication was turned off" in p.read_text(errors="replace")]
    assert len(told) == 1, "the owner is mailed about it"
    log = staff.get(f"/api/v1/staff/audit?tenant={t.id}&action=owner.totp.off").json()
    assert [e["detail"] for e in log] == ["called back on the number on file"], log
    # The API: nothing left to turn off.
    r = staff.post(f"/api/v1/staff/tenants/{t.id}/totp-off", {"owner": t.email, "reason": "again"})
    assert r.status_code == 409, r.text


def test_every_staff_action_is_in_the_audit_log(control_plane, tenant, staff):
    admin_email = control_plane.staff[0]
    victim = signup_tenant(control_plane)
    reason = f"audit check {unique('')} <b>&amp;</b>"
    assert staff.post(f"/api/v1/staff/tenants/{tenant.id}/suspend", {"reason": reason}).status_code == 204
    assert staff.post(f"/api/v1/staff/tenants/{tenant.id}/resume").status_code == 204
    # Through the panel too.
    p = Panel(control_plane)
    assert p.login(*control_plane.staff).status_code == 303
    r = p.form(f"/staff/tenants/{victim.id}", f"/staff/tenants/{victim.id}/delete", {"reason": "audit delete"}, allow_redirects=False)
    assert r.status_code == 303
    assert staff.get(f"/api/v1/staff/tenants/{victim.id}").json()["tenant"]["status"] == "closed"

    entries = staff.get("/api/v1/staff/audit").json()
    def find(action, tenant_id=None, actor=admin_email):
        return [e for e in entries if e["action"] == action and (tenant_id is None or e.get("tenantID") == tenant_id)
                and (actor is None or e.get("actorEmail") == actor)]
    sus = find("tenant.suspend", tenant.id)
    assert sus and sus[0]["detail"] == reason and sus[0]["actorRole"] == "admin" and sus[0]["ip"] == "127.0.0.1", sus
    assert find("tenant.resume", tenant.id)
    dele = find("tenant.delete", victim.id)
    assert dele and dele[0]["detail"] == "audit delete"
    assert find("staff.login")
    support_email = control_plane.support[0]
    assert [e for e in entries if e["action"] == "staff.login" and e.get("actorEmail") == support_email]
    created = [e for e in entries if e["action"] == "staff.create" and e.get("target") == support_email]
    assert created and created[0]["actorRole"] == "system" and "role=support" in created[0]["detail"]
    assert find("mailbox.create", tenant.id, actor=tenant.email)
    # Filters.
    only = staff.get(f"/api/v1/staff/audit?tenant={tenant.id}&action=tenant.suspend").json()
    assert only and all(e["action"] == "tenant.suspend" and e["tenantID"] == tenant.id for e in only)
    # The panel's audit page has the same rows, escaped.
    page = p.get(f"/staff/audit?tenant={tenant.id}").text
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    assert any('class="action">tenant.suspend<' in row and html.escape(reason, quote=True) in row for row in rows), page[-3000:]
    assert any('class="action">tenant.resume<' in row for row in rows)
    assert "<b>&amp;</b>" not in page
    page = p.get("/staff/audit?action=tenant.delete").text
    assert victim.id in page and "audit delete" in page
    # Owners and support-free routes: an owner gets 403 on the audit API.
    assert tenant.api.get("/api/v1/staff/audit").status_code == 403


def test_login_throttle_api_and_form(control_plane):
    """Last in the module: these failures count against 127.0.0.1."""
    a = signup_tenant(control_plane)
    b = signup_tenant(control_plane)
    api = API(control_plane)
    codes = [api.post("/api/v1/tokens", {"email": a.email, "password": f"wrong-{i}"}).status_code for i in range(5)]
    assert codes == [401] * 5
    r = api.post("/api/v1/tokens", {"email": a.email, "password": "wrong-again"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0, (r.status_code, r.text)
    # Even the right password is refused now.
    r = api.post("/api/v1/tokens", {"email": a.email, "password": a.password})
    assert r.status_code == 429
    # The form: five failures, then a refusal, also for the right password.
    p = Panel(control_plane)
    for i in range(5):
        r = p.login(b.email, f"wrong-{i}")
        assert r.status_code == 401 and 'role="alert"' in r.text, (i, r.status_code)
    r = p.login(b.email, b.password)
    assert r.status_code == 429, r.status_code
    assert "Too many failed logins" in html.unescape(r.text) and int(r.headers["Retry-After"]) > 0
    assert "__Host-postcell=" not in r.headers.get("Set-Cookie", "")
    # Another account from the same address is not locked yet (12 < 20).
    assert Panel(control_plane).login(*control_plane.staff).status_code == 303
