"""The control plane's "Show it" for mail (docs/CONTROL-PLANE.md): a tenant
signed up through the API and the verification link in STATE/outbox gets a
cell; real clients (imaplib over IMAPS, smtplib with STARTTLS and AUTH on
submission, smtplib to the MX port) use the mailboxes made through the API;
an alias delivers to two mailboxes; the panel's export is a tar of Maildirs
that Python reads; closing the account removes the cell and its logins.

Runs on SQLite, and on PostgreSQL when POSTCELL_TEST_POSTGRES_URL is set.
Everything is on 127.0.0.1."""
import io
import mailbox
import os
import pathlib
import smtplib
import tarfile
import tempfile

import pytest

from helpers_control import (  # noqa: F401 - control_plane is a fixture
    CellRun, Panel, body_of, control_plane, fetch_by_subject, imaps_login, imaps_refusal, make_message, mx_send,
    port_answers, signup_tenant, staff_api, strong_password, submission_login, unique, wait_for, wait_imaps, wait_message,
)

from helpers_clients import unix_http_json  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(scope="module")
def tenant(control_plane):
    t = signup_tenant(control_plane, plan="family-mini")
    t.anna = t.add_mailbox("anna", name="Anna")
    t.ben = t.add_mailbox("ben", name="Ben")
    t.port = t.ports(t.anna[0])
    wait_imaps(t.port["imaps"], *t.anna, timeout=40)
    return t


def test_signup_gives_a_running_cell_with_the_plan(control_plane, tenant):
    r = tenant.api.get("/api/v1/me")
    assert r.status_code == 200
    me = r.json()
    assert me["role"] == "owner" and me["email"] == tenant.email
    assert me["tenant"]["status"] == "active" and me["tenant"]["plan"] == "family-mini" and me["tenant"]["slug"] == tenant.slug
    cell = wait_for(lambda: (c := tenant.api.get("/api/v1/cell").json()) and c["phase"] == "running" and c["healthy"] and c,
                    30, what="cell running and healthy")
    assert cell["id"] == tenant.cell_id and cell["desired"] == "running"
    setup = tenant.setup(tenant.anna[0])
    assert setup["username"] == tenant.anna[0] == f"anna@{tenant.domain}"
    assert setup["server"] == "127.0.0.1"
    assert [setup[k] for k in ("imapPort", "imapsPort", "pop3Port", "pop3sPort", "submissionPort", "submissionsPort")] == \
        [tenant.port[k] for k in ("imap", "imaps", "pop3", "pop3s", "submission", "submissions")]


def test_imaps_and_submission_logins(tenant):
    addr, pw = tenant.anna
    c = imaps_login(tenant.port["imaps"], addr, pw)
    typ, _ = c.select("INBOX")
    assert typ == "OK"
    c.logout()
    s = submission_login(tenant.port["submission"], addr, pw)
    s.quit()
    # A wrong password is refused by both.
    assert imaps_refusal(tenant.port["imaps"], addr, pw + "x") is not None
    with pytest.raises(smtplib.SMTPAuthenticationError):
        submission_login(tenant.port["submission"], addr, pw + "x")
    # ben is a separate mailbox with his own password.
    assert imaps_refusal(tenant.port["imaps"], tenant.ben[0], pw) is not None


def test_mx_delivery_arrives_byte_for_byte(tenant):
    addr, pw = tenant.anna
    subject = unique("mx-")
    body = "Dear Anna,\r\n\r\nbytes: caf\u00e9 \u2603 \u00e4\u00f6\u00fc.\r\n.leading dot line\r\nend\r\n"
    message, expected = make_message(addr, subject, body=body)
    assert mx_send(tenant.port["mx"], [addr], message) == {}
    [raw] = wait_message(tenant.port["imaps"], addr, pw, subject)
    assert body_of(raw) == expected
    assert f"Subject: {subject}".encode() in raw
    # Not delivered to the other mailbox.
    c = imaps_login(tenant.port["imaps"], *tenant.ben)
    assert fetch_by_subject(c, subject) == []
    c.logout()


def test_submission_delivers_to_the_own_domain(tenant):
    (a, apw), (b, bpw) = tenant.anna, tenant.ben
    subject = unique("sub-")
    message, expected = make_message(b, subject, sender=a)
    s = submission_login(tenant.port["submission"], a, apw)
    assert s.sendmail(a, [b], message) == {}
    s.quit()
    [raw] = wait_message(tenant.port["imaps"], b, bpw, subject)
    assert body_of(raw) == expected


def test_mx_refuses_unknown_recipients(tenant):
    message, _ = make_message(f"nobody@{tenant.domain}", "x")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mx_send(tenant.port["mx"], [f"nobody@{tenant.domain}"], message)


def test_alias_delivers_to_two_mailboxes(tenant):
    r = tenant.api.post("/api/v1/aliases", {"local": "family", "targets": [tenant.anna[0], tenant.ben[0]]})
    assert r.status_code == 201, r.text
    alias = r.json()["address"]
    assert alias == f"family@{tenant.domain}"
    assert sorted(r.json()["targets"]) == sorted([tenant.anna[0], tenant.ben[0]])
    assert any(a["address"] == alias for a in tenant.api.get("/api/v1/aliases").json())
    subject = unique("alias-")
    message, expected = make_message(alias, subject)

    # The change reaches the running cell through its admin API; give it a moment.
    def deliver():
        try:
            return mx_send(tenant.port["mx"], [alias], message) == {}
        except smtplib.SMTPRecipientsRefused:
            return False
    wait_for(deliver, 15, what="alias accepted by MX")
    for addr, pw in (tenant.anna, tenant.ben):
        [raw] = wait_message(tenant.port["imaps"], addr, pw, subject)
        assert body_of(raw) == expected


def test_mailbox_password_change_reaches_the_cell(tenant):
    addr, old = tenant.ben
    new = strong_password()
    r = tenant.api.call("PUT", f"/api/v1/mailboxes/{addr}/password", {"password": new})
    assert r.status_code == 204, r.text
    wait_for(lambda: imaps_refusal(tenant.port["imaps"], addr, old) is not None, 15, what="old password refused")
    wait_imaps(tenant.port["imaps"], addr, new, timeout=15)
    tenant.ben = (addr, new)


def test_export_is_a_tar_of_maildirs_with_the_message(control_plane, tenant):
    addr, pw = tenant.anna
    subject = unique("export-")
    message, expected = make_message(addr, subject)
    assert mx_send(tenant.port["mx"], [addr], message) == {}
    wait_message(tenant.port["imaps"], addr, pw, subject)
    # A second folder, so the export holds a Maildir++ subfolder too.
    c = imaps_login(tenant.port["imaps"], addr, pw)
    created = c.create("Trips")
    assert created[0] == "OK", created
    c.select("INBOX")
    typ, data = c.uid("SEARCH", None, "SUBJECT", f'"{subject}"')
    assert c.uid("COPY", data[0].split()[0], "Trips")[0] == "OK"
    c.logout()

    panel = Panel(control_plane)
    assert panel.login(tenant.email, tenant.password).status_code == 303
    # Making an export is a POST from the close page, with its CSRF token.
    assert panel.post("/panel/export", {}).status_code == 403
    r = panel.form("/panel/close", "/panel/export", {})
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Content-Type"] == "application/x-tar"
    assert f'filename="postcell-{tenant.slug}-export.tar"' in r.headers["Content-Disposition"]
    assert int(r.headers["Content-Length"]) == len(r.content)
    with tempfile.TemporaryDirectory() as d:
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            names = tar.getnames()
            assert all(not n.startswith("/") and ".." not in n.split("/") for n in names), names
            tar.extractall(d, filter="data")
        assert any(n.startswith(f"{tenant.ben[0]}/Maildir") for n in names), names
        md = mailbox.Maildir(f"{d}/{addr}/Maildir", factory=None, create=False)
        found = [m for m in md if m["Subject"] == subject]
        assert len(found) == 1
        assert body_of(found[0].as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")) == expected
        assert "Trips" in md.list_folders()
        assert [m["Subject"] for m in md.get_folder("Trips")] == [subject]
    # Without a session there is no export.
    anon = Panel(control_plane).post("/panel/export", {}, allow_redirects=False)
    assert anon.status_code == 303 and anon.headers["Location"] == "/login"
    # The archive is removed once downloaded.
    assert not list((control_plane.state / "cells" / "cells" / tenant.cell_id / "exports").glob("*.tar"))


def test_plan_change_reaches_the_cell(control_plane, tenant):
    """The owner moves up and down a plan (API and panel); the cell's storage
    quota follows, as its admin API reports; a plan that cannot hold the
    account is refused beside the field and changes nothing."""
    sock = pathlib.Path(CellRun(control_plane.state, tenant.cell_id).data_directory) / "sockets" / "admin.sock"

    def cell_quota():
        status, usage = unix_http_json(sock, "GET", "/v1/usage")
        assert status == 200, usage
        return usage.get("cellQuotaBytes")

    plans = {p["id"]: p for p in tenant.api.get("/api/v1/plans").json()}
    assert cell_quota() == plans["family-mini"]["storageBytes"]
    r = tenant.api.call("PUT", "/api/v1/plan", {"plan": "family"})
    assert r.status_code == 200 and r.json()["plan"] == "family", r.text
    assert wait_for(lambda: cell_quota() == plans["family"]["storageBytes"], 20, what="the cell's new quota")
    # More mailboxes than family-mini holds, then the way down is refused.
    extra = [tenant.add_mailbox(f"kid{i}")[0] for i in range(4)]
    r = tenant.api.call("PUT", "/api/v1/plan", {"plan": "family-mini"})
    assert r.status_code == 422 and "mailboxes" in r.json()["fields"]["plan"], r.text
    p = Panel(control_plane)
    assert p.login(tenant.email, tenant.password).status_code == 303
    r = p.form("/panel/plan", "/panel/plan", {"plan": "family-mini"})
    assert r.status_code == 422 and 'id="plan-error"' in r.text, r.status_code
    assert tenant.api.get("/api/v1/me").json()["tenant"]["plan"] == "family"
    assert cell_quota() == plans["family"]["storageBytes"]
    for addr in extra:
        assert tenant.api.call("DELETE", f"/api/v1/mailboxes/{addr}").status_code == 204
    r = p.form("/panel/plan", "/panel/plan", {"plan": "family-mini"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/panel?done=plan-changed", r.status_code
    assert tenant.api.get("/api/v1/me").json()["tenant"]["plan"] == "family-mini"
    assert wait_for(lambda: cell_quota() == plans["family-mini"]["storageBytes"], 20, what="the cell's quota back")
    # Mail still flows on the new plan.
    addr, pw = tenant.anna
    subject = unique("after-plan")
    message, _ = make_message(addr, subject)
    assert mx_send(tenant.port["mx"], [addr], message) == {}
    wait_message(tenant.port["imaps"], addr, pw, subject)


def test_closing_the_account_removes_the_cell(control_plane, tenant):
    addr, pw = tenant.anna
    run = control_plane.cell_run(tenant.cell_id)
    pids = run.processes()
    assert pids and run.engine_pids(), "the cell runs before closure"
    panel = Panel(control_plane)
    assert panel.login(tenant.email, tenant.password).status_code == 303
    # Wrong confirmation: refused beside the field, nothing closed.
    r = panel.form("/panel/close", "/panel/close", {"confirm": "not-" + tenant.slug, "password": tenant.password})
    assert r.status_code == 422 and 'id="confirm-error"' in r.text
    assert port_answers(tenant.port["imaps"])
    r = panel.form("/panel/close", "/panel/close", {"confirm": tenant.slug, "password": tenant.password}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/login?done=closed", r.text[:300]
    # The cell's ports stop answering, its processes end, its data goes.
    for name in ("mx", "submission", "imaps", "imap", "pop3s"):
        wait_for(lambda: not port_answers(tenant.port[name]), 30, what=f"{name} port closed")
    wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), 30, what="cell processes gone")
    assert not os.path.exists(run.data_directory)
    # Logins fail everywhere: mail, panel, API token, a new token.
    with pytest.raises(OSError):
        imaps_login(tenant.port["imaps"], addr, pw, timeout=3)
    r = Panel(control_plane).login(tenant.email, tenant.password)
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert "__Host-postcell=" not in r.headers.get("Set-Cookie", "")
    assert tenant.api.get("/api/v1/me").status_code == 401
    r = tenant.api.call("POST", "/api/v1/tokens", {"email": tenant.email, "password": tenant.password}, token="")
    assert r.status_code in (401, 403), r.text
    # The slot is free again for the next tenant (and the record is kept as closed).
    staff = staff_api(control_plane)
    d = staff.get(f"/api/v1/staff/tenants/{tenant.id}").json()
    assert d["tenant"]["status"] == "closed" and d.get("cell") is None and d["mailboxes"] == []
