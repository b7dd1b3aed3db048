"""The control plane's "Show it" in a real browser: headless Chromium driven
by Selenium through the customer and staff panels (templates/panel/*.mustache
element ids), with real mail clients checking what the panels did to the
tenant's cell.

- An owner signs up (choosing a plan), opens the link from STATE/outbox, logs
  in, adds two mailboxes, changes a mailbox password and their own, turns on
  TOTP (pyotp computes the codes from #totp-secret; zbarimg reads the QR code
  back to the otpauth link) and logs in again with it; makes an API token on
  the account page, uses it, and revokes it.
- The demo staff admin finds the tenant, suspends it with a reason: IMAP and
  SMTP AUTH logins are refused (NO [UNAVAILABLE], 525 5.7.13) while MX still
  takes mail; after resuming, logins work and the mail is there.
- Invalid input comes back beside the fields (.field-error), escaped, never
  executed; the panel works with JavaScript off.

Chromium only ever loads https://127.0.0.1:PORT (no proxy, no background
networking, every other host name unresolvable). Screenshots go to
artifacts/screenshots/<test>-<step>.png. Runs on SQLite, and on PostgreSQL
when POSTCELL_TEST_POSTGRES_URL is set."""
import contextlib
import html
import os
import re
import shutil
import smtplib
import tempfile
import subprocess
import time
import urllib.parse

import pyotp
import pytest

from helpers_control import (  # noqa: F401 - control_plane is a fixture
    API, PROVIDER_DOMAIN, Panel, body_of, control_plane, imaps_refusal, make_message, mx_send, screenshot,
    strong_password, submission_login, unique, wait_for, wait_imaps, wait_message,
)

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = os.environ.get("POSTCELL_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("POSTCELL_CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("chromium and chromium-driver are not installed (scripts/test.sh installs them)", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def make_driver(javascript=True):
    profile = tempfile.mkdtemp(prefix="postcell-chromium-")
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--ignore-certificate-errors", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-proxy-server", "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-default-apps", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
              "--disable-client-side-phishing-detection", "--disable-domain-reliability", "--disable-breakpad",
              "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
              "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions,PasswordLeakDetection",
              # Nothing but loopback resolves: no traffic can go anywhere else.
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
              "--window-size=1280,1400", f"--user-data-dir={profile}"):
        o.add_argument(a)
    prefs = {"credentials_enable_service": False, "profile.password_manager_enabled": False,
             "profile.password_manager_leak_detection": False}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    o.add_experimental_option("prefs", prefs)
    log = tempfile.NamedTemporaryFile(prefix="chromedriver-", suffix=".log", delete=False).name
    d = webdriver.Chrome(options=o, service=Service(executable_path=CHROMEDRIVER, log_output=log))
    d.set_page_load_timeout(60)
    d._postcell_files = (profile, log)
    return d


def quit_driver(d):
    profile, log = d._postcell_files
    try:
        d.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(log)


@pytest.fixture(scope="module")
def browser():
    os.environ.setdefault("SE_AVOID_STATS", "true")
    d = make_driver()
    yield d
    quit_driver(d)


@pytest.fixture(autouse=True)
def logged_out(request, control_plane):
    """Every test starts logged out, whatever the one before left behind."""
    if "browser" in request.fixturenames:
        d = request.getfixturevalue("browser")
        d.get(control_plane.url + "/healthz")
        d.delete_all_cookies()


@pytest.fixture
def nojs_browser():
    d = make_driver(javascript=False)
    yield d
    quit_driver(d)


# MARK: driving the panel

def go(d, cp, path):
    d.get(cp.url + path)
    assert d.current_url.startswith(cp.url), d.current_url


def fill(d, element_id, value):
    e = d.find_element(By.ID, element_id)
    e.clear()
    e.send_keys(value)
    return e


def gone(element):
    """Like EC.staleness_of, but a node the browser already dropped may also
    answer with an inspector error instead of a stale reference."""
    def check(_):
        try:
            element.is_enabled()
            return False
        except (StaleElementReferenceException, WebDriverException):
            return True
    return check


def click(d, element_id):
    """Clicks a submit button and waits for the next page."""
    old = d.find_element(By.TAG_NAME, "html")
    d.find_element(By.ID, element_id).click()
    WebDriverWait(d, 60).until(gone(old))
    assert_no_alert(d)


def assert_no_alert(d):
    try:
        a = d.switch_to.alert
    except NoAlertPresentException:
        return
    text = a.text
    a.dismiss()
    raise AssertionError(f"a script ran and opened an alert: {text!r}")


def text_of(d, element_id):
    return d.find_element(By.ID, element_id).text


def field_errors(d):
    return {e.get_attribute("id"): e.text for e in d.find_elements(By.CSS_SELECTOR, ".field-error")}


def notice(d):
    found = d.find_elements(By.CSS_SELECTOR, "p.notice")
    return found[0].text if found else ""


def scan_qr(d, element_id):
    """Decodes the QR code drawn in element `element_id` from a screenshot
    of it, with zbar (zbarimg from Debian's zbar-tools)."""
    png = d.find_element(By.ID, element_id).screenshot_as_png
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(png)
        f.flush()
        r = subprocess.run(["zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", f.name],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.returncode, r.stderr)
    return r.stdout.rstrip("\n")


def login(d, cp, email, password, totp_code=None):
    go(d, cp, "/login")
    fill(d, "email", email)
    fill(d, "password", password)
    click(d, "login-submit")
    if totp_code is not None:
        assert d.current_url == cp.url + "/login/totp", d.current_url
        fill(d, "code", totp_code)
        click(d, "totp-submit")


def logout(d):
    click(d, "logout")


def add_mailbox(d, local, name, password):
    fill(d, "local", local)
    fill(d, "displayName", name)
    fill(d, "password", password)
    click(d, "mailbox-submit")


# MARK: the owner's journey and the staff's suspension

def test_owner_journey_and_staff_suspension(browser, control_plane):
    d, cp = browser, control_plane
    T = "journey"
    slug = unique("fam")
    owner = f"parent@{slug}.example"
    owner_pw = strong_password()

    # Sign up, choosing the smallest plan.
    go(d, cp, "/signup")
    fill(d, "name", f"The {slug} family")
    fill(d, "slug", slug)
    plan = d.find_element(By.CSS_SELECTOR, 'input[name="plan"][value="family-mini"]')
    plan.click()
    assert plan.is_selected()
    fill(d, "email", owner)
    fill(d, "password", owner_pw)
    screenshot(d, T, "01-signup")
    click(d, "signup-submit")
    assert owner in text_of(d, "signup-sent") and f"{slug}.postcell.test" in text_of(d, "signup-sent")
    screenshot(d, T, "02-signup-sent")

    # Not yet: logging in before confirming is refused.
    login(d, cp, owner, owner_pw)
    assert d.current_url.startswith(cp.url + "/login") and "confirm" in d.find_element(By.CSS_SELECTOR, '[role="alert"]').text

    # The verification link from the outbox.
    link = cp.verification_link(owner)
    d.get(link)
    assert f"{slug}.postcell.test" in text_of(d, "verified")
    screenshot(d, T, "03-verified")

    # Log in; the dashboard shows the plan and the cell.
    login(d, cp, owner, owner_pw)
    assert d.current_url == cp.url + "/panel"
    assert "Family Mini" in text_of(d, "status")
    screenshot(d, T, "04-dashboard")

    # Two mailboxes.
    boxes = {}
    for local, name in (("mum", "Mum"), ("kid", "Kid")):
        pw = strong_password()
        add_mailbox(d, local, name, pw)
        assert notice(d) == "The mailbox is ready.", (field_errors(d), d.page_source[-2000:])
        boxes[f"{local}@{slug}.postcell.test"] = pw
    listed = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#mailboxes td.address")]
    assert sorted(listed) == sorted(boxes)
    screenshot(d, T, "05-two-mailboxes")

    # The mailbox page: set-up facts; change its password.
    mum = f"mum@{slug}.postcell.test"
    go(d, cp, f"/panel/mailboxes/{mum}")
    assert text_of(d, "setup-username") == mum
    imaps = int(text_of(d, "setup-imaps"))
    submission = int(text_of(d, "setup-submission"))
    mx = imaps - 4
    wait_imaps(imaps, mum, boxes[mum], timeout=40)
    new_mum_pw = strong_password()
    fill(d, "password", new_mum_pw)
    click(d, "mailbox-password-submit")
    assert notice(d) == "The password was changed."
    screenshot(d, T, "06-mailbox-password")
    wait_for(lambda: imaps_refusal(imaps, mum, boxes[mum]) is not None, 15, what="old mailbox password refused")
    boxes[mum] = new_mum_pw
    wait_imaps(imaps, mum, new_mum_pw, timeout=15)

    # The owner's own password.
    go(d, cp, "/account")
    fill(d, "current", owner_pw)
    new_owner_pw = strong_password()
    fill(d, "password", new_owner_pw)
    click(d, "account-password-submit")
    assert notice(d) == "The password was changed."
    screenshot(d, T, "07-owner-password")
    owner_pw = new_owner_pw
    # A second session (plain HTTPS) to watch the dashboard later on.
    watcher = Panel(cp)
    assert watcher.login(owner, owner_pw).status_code == 303

    # TOTP: the secret from the page, the code from pyotp.
    click(d, "totp-begin")
    secret = d.find_element(By.ID, "totp-secret").get_attribute("data-secret")
    assert secret and len(secret) >= 16
    screenshot(d, T, "08-totp-setup")
    # The QR code, as a phone camera sees it: zbarimg reads the link back.
    link = d.find_element(By.ID, "totp-link").get_attribute("href")
    assert scan_qr(d, "totp-qr") == link
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert link.startswith("otpauth://totp/") and query["secret"] == [secret] and query["issuer"] == [PROVIDER_DOMAIN], link
    totp = pyotp.TOTP(secret)
    fill(d, "code", "000000" if totp.now() != "000000" else "111111")
    click(d, "totp-enable")
    assert "code-error" in field_errors(d)
    secret_again = d.find_element(By.ID, "totp-secret").get_attribute("data-secret")
    assert secret_again == secret
    assert scan_qr(d, "totp-qr") == link
    enabled_step = int(time.time()) // 30
    fill(d, "code", totp.at(enabled_step * 30))
    click(d, "totp-enable")
    assert notice(d) == "Two-factor authentication is on."
    assert d.find_elements(By.ID, "totp-on")
    screenshot(d, T, "09-totp-on")

    # Log out, log in again: password, then a fresh code.
    logout(d)
    assert d.current_url == cp.url + "/login"
    go(d, cp, "/panel")
    assert d.current_url == cp.url + "/login"
    login(d, cp, owner, owner_pw)
    assert d.current_url == cp.url + "/login/totp"
    screenshot(d, T, "10-login-totp")
    # The code used to turn TOTP on is not accepted a second time.
    fill(d, "code", totp.at(enabled_step * 30))
    click(d, "totp-submit")
    assert "code-error" in field_errors(d)
    step = max(int(time.time()) // 30, enabled_step + 1)
    fill(d, "code", totp.at(step * 30))
    click(d, "totp-submit")
    assert d.current_url == cp.url + "/panel", d.current_url
    screenshot(d, T, "11-logged-in-with-totp")

    # An API token made on the account page: shown once, works, listed, revoked.
    go(d, cp, "/account")
    fill(d, "token-name", "backup script")
    fill(d, "token-password", "not-my-password-1")
    click(d, "token-create")
    assert "token-password-error" in field_errors(d) and not d.find_elements(By.ID, "new-token")
    fill(d, "token-password", owner_pw)
    click(d, "token-create")
    token = d.find_element(By.ID, "new-token").text.strip()
    assert token.startswith("pc_")
    screenshot(d, T, "11b-api-token")
    api = API(cp)
    assert api.get("/api/v1/me", token=token).json()["email"] == owner
    rows = d.find_elements(By.CSS_SELECTOR, "#token-list tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == ["backup script"]
    go(d, cp, "/account")
    assert not d.find_elements(By.ID, "new-token") and token not in d.page_source
    assert "never" not in d.find_element(By.CSS_SELECTOR, "#token-list tbody tr").text
    click(d, d.find_element(By.CSS_SELECTOR, "#token-list button.danger").get_attribute("id"))
    assert notice(d) == "The token was revoked."
    assert d.find_elements(By.ID, "no-tokens")
    assert api.get("/api/v1/me", token=token).status_code == 401
    logout(d)

    # The staff admin finds the tenant and suspends it.
    staff_email, staff_pw = cp.staff
    login(d, cp, staff_email, staff_pw)
    assert d.current_url == cp.url + "/staff"
    go(d, cp, "/staff/tenants")
    fill(d, "q", slug)
    click(d, "search-submit")
    rows = d.find_elements(By.CSS_SELECTOR, "#tenants tbody tr")
    assert len(rows) == 1 and rows[0].find_element(By.CSS_SELECTOR, "td.slug").text == slug
    screenshot(d, T, "12-staff-search")
    old = d.find_element(By.TAG_NAME, "html")
    rows[0].find_element(By.TAG_NAME, "a").click()
    WebDriverWait(d, 30).until(gone(old))
    assert text_of(d, "tenant-status") == "active"
    reason = 'Unpaid invoice <img src=x onerror=alert(1)> & "overdue"'
    click(d, "suspend")  # without a reason: refused beside the field
    assert "reason-error" in field_errors(d)
    fill(d, "reason", reason)
    click(d, "suspend")
    assert text_of(d, "tenant-status") == "suspended"
    assert reason in d.find_element(By.TAG_NAME, "h1").find_element(By.XPATH, "following-sibling::p[1]").text
    screenshot(d, T, "13-suspended")

    # Logins are refused; MX still takes mail.
    refusal = imaps_refusal(imaps, mum, boxes[mum])
    assert refusal is not None and b"[UNAVAILABLE]" in refusal, refusal
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        submission_login(submission, mum, boxes[mum])
    assert e.value.smtp_code == 525 and b"5.7.13" in e.value.smtp_error, e.value
    subject = unique("while-suspended-")
    message, expected = make_message(mum, subject)
    assert mx_send(mx, [mum], message) == {}
    # The owner sees why, escaped, and cannot change anything.
    dash = watcher.get("/panel")
    m = re.search(r'<p class="error" id="suspended">(.*?)</p>', dash.text, re.S)
    assert m and reason in html.unescape(m.group(1)), dash.text[-3000:]
    assert "&lt;img src=x" in m.group(1) and "<img src=x" not in dash.text
    r = watcher.form("/panel", "/panel/mailboxes", {"local": "more", "displayName": "", "password": strong_password()})
    assert r.status_code == 403 and "suspended" in r.text

    # Resume: logins work again and the mail received meanwhile is there.
    click(d, "resume")
    assert text_of(d, "tenant-status") == "active"
    screenshot(d, T, "14-resumed")
    wait_imaps(imaps, mum, boxes[mum], timeout=15)
    [raw] = wait_message(imaps, mum, boxes[mum], subject)
    assert body_of(raw) == expected
    s = submission_login(submission, mum, boxes[mum])
    s.quit()
    logout(d)


# MARK: invalid input

INJECTIONS = ["<script>alert('xss')</script>", "' OR 1=1 --"]


def test_invalid_forms_show_escaped_field_errors(browser, control_plane):
    d, cp = browser, control_plane
    T = "invalid"

    # Signup: every field wrong at once, with markup and SQL in them.
    go(d, cp, "/signup")
    fill(d, "name", INJECTIONS[0])
    fill(d, "slug", INJECTIONS[1])
    fill(d, "email", "' OR 1=1 --")
    fill(d, "password", "password1")
    click(d, "signup-submit")
    errors = field_errors(d)
    assert {"name-error", "slug-error", "email-error", "password-error"} <= set(errors), errors
    assert d.find_element(By.ID, "name").get_attribute("value") == INJECTIONS[0]
    assert d.find_element(By.ID, "slug").get_attribute("value") == INJECTIONS[1]
    assert d.find_element(By.ID, "password").get_attribute("value") == "", "passwords are never echoed"
    scripts = d.find_elements(By.TAG_NAME, "script")
    assert [s.get_attribute("src") for s in scripts] == [cp.url + "/static/panel.js"], "no script but our own"
    screenshot(d, T, "01-signup-errors")

    # The same through plain HTTPS: the raw page has the text escaped.
    p = Panel(cp)
    r = p.signup(email="' OR 1=1 --", password="password1", slug=INJECTIONS[1], name=INJECTIONS[0])
    assert r.status_code == 422
    assert 'value="&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;"' in r.text
    assert "<script>alert" not in r.text
    assert 'value="&#39; OR 1=1 --"' in r.text and "' OR 1=1" not in r.text

    # Reserved address names.
    for reserved in ("postmaster", "abuse"):
        go(d, cp, "/signup")
        fill(d, "name", "Reserved")
        fill(d, "slug", reserved)
        fill(d, "email", f"someone@{unique('r')}.example")
        fill(d, "password", strong_password())
        click(d, "signup-submit")
        assert "reserved" in field_errors(d).get("slug-error", ""), field_errors(d)
    screenshot(d, T, "02-signup-reserved")

    # Login with SQL in both fields. The browser itself holds back a value
    # that is no e-mail address (type="email"); the server refuses it too.
    go(d, cp, "/login")
    fill(d, "email", INJECTIONS[1])
    fill(d, "password", "' OR '1'='1")
    d.find_element(By.ID, "login-submit").click()
    assert d.current_url == cp.url + "/login"
    assert d.execute_script("return document.getElementById('email').validity.valid") is False
    assert not d.find_elements(By.ID, "logout")
    r = Panel(cp).login(INJECTIONS[1], "' OR '1'='1")
    assert r.status_code == 401 and "__Host-postcell=" not in r.headers.get("Set-Cookie", "")
    assert 'value="&#39; OR 1=1 --"' in r.text
    r = Panel(cp).login(cp.staff[0] + "' --", "x")
    assert r.status_code == 401
    r = Panel(cp).login(INJECTIONS[0], "x")
    assert r.status_code == 401 and "<script>alert" not in r.text and "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in r.text

    # The demo owner's dashboard: mailbox form errors.
    owner, owner_pw, family = cp.customer
    login(d, cp, owner, owner_pw)
    assert d.current_url == cp.url + "/panel"
    before = sorted(e.text for e in d.find_elements(By.CSS_SELECTOR, "#mailboxes td.address"))
    assert family in before
    cases = [
        ("postmaster", "Post", strong_password(), "local-error", "reserved"),
        ("abuse", "Abuse", strong_password(), "local-error", "reserved"),
        (family.split("@")[0], "Dup", strong_password(), "local-error", "taken"),
        ("weakling", "Weak", "password", "password-error", ""),
        ("grandma", INJECTIONS[0], strong_password(), "displayName-error", ""),
        (INJECTIONS[1], "Sql", strong_password(), "local-error", ""),
        (INJECTIONS[0], "X", strong_password(), "local-error", ""),
    ]
    for i, (local, name, pw, field, word) in enumerate(cases):
        go(d, cp, "/panel")
        add_mailbox(d, local, name, pw)
        errors = field_errors(d)
        assert field in errors and word in errors[field].lower(), (local, name, errors)
        assert d.find_element(By.ID, "local").get_attribute("value") == local
        assert d.find_element(By.ID, "displayName").get_attribute("value") == name
        assert d.find_element(By.ID, "password").get_attribute("value") == ""
        assert d.find_element(By.CSS_SELECTOR, '[role="alert"]').text
        screenshot(d, T, f"03-mailbox-{i}")
    after = sorted(e.text for e in d.find_elements(By.CSS_SELECTOR, "#mailboxes td.address"))
    assert after == before, "nothing was created"

    # Raw HTML of a refused mailbox form: escaped.
    p = Panel(cp)
    assert p.login(owner, owner_pw).status_code == 303
    r = p.form("/panel", "/panel/mailboxes", {"local": INJECTIONS[0], "displayName": INJECTIONS[0], "password": strong_password()})
    assert r.status_code == 422
    assert "<script>alert" not in r.text and "&lt;script&gt;" in r.text

    # A name with SQL in it is just a name: stored and shown literally.
    go(d, cp, "/panel")
    sql_name = "Robert'); DROP TABLE mailboxes;--"
    add_mailbox(d, "bobby", sql_name, strong_password())
    assert notice(d) == "The mailbox is ready.", field_errors(d)
    row = [tr for tr in d.find_elements(By.CSS_SELECTOR, "#mailboxes tbody tr") if tr.text.startswith("bobby@")]
    assert row and sql_name in row[0].text
    screenshot(d, T, "04-sql-name-stored")
    logout(d)
    assert_no_alert(d)


def test_error_summary_links_to_the_fields(browser, control_plane):
    d, cp = browser, control_plane
    go(d, cp, "/signup")
    fill(d, "slug", "postmaster")
    click(d, "signup-submit")
    links = d.find_elements(By.CSS_SELECTOR, '[role="alert"] li a')
    assert {a.get_attribute("href").rsplit("#", 1)[1] for a in links} >= {"slug", "email", "name", "password"}


def test_owner_adds_an_alias_in_the_panel(browser, control_plane):
    d, cp = browser, control_plane
    owner, owner_pw, family = cp.customer
    login(d, cp, owner, owner_pw)
    try:
        assert family in [e.text for e in d.find_elements(By.CSS_SELECTOR, "#mailboxes td.address")]
        assert d.find_elements(By.ID, "new-alias"), "the dashboard has a mailbox but no alias form"
        fill(d, "alias-local", "everyone")
        d.find_element(By.CSS_SELECTOR, f'#new-alias input[name="targets"][value="{family}"]').click()
        click(d, "alias-submit")
        assert notice(d) == "The alias is ready."
        assert f"everyone@{family.split('@')[1]}" in [e.text for e in d.find_elements(By.CSS_SELECTOR, "#aliases td.address")]
    finally:
        go(d, cp, "/panel")
        logout(d)


def test_password_meter_uses_javascript(browser, control_plane):
    d, cp = browser, control_plane
    go(d, cp, "/signup")
    d.find_element(By.ID, "password").send_keys("tr0ub4dor-velvet-otter")
    label = WebDriverWait(d, 10).until(lambda x: x.find_element(By.CSS_SELECTOR, ".meter-label").text)
    assert label
    assert int(d.find_element(By.CSS_SELECTOR, ".meter meter").get_attribute("value")) > 0


# MARK: without JavaScript

def test_works_without_javascript(nojs_browser, control_plane):
    d, cp = nojs_browser, control_plane
    T = "nojs"
    slug = unique("nojs")
    owner = f"owner@{slug}.example"
    pw = strong_password()
    go(d, cp, "/signup")
    d.find_element(By.ID, "password").send_keys("tr0ub4dor-velvet-otter")
    time.sleep(1.0)
    assert d.find_element(By.CSS_SELECTOR, ".meter-label").text == "", "JavaScript is off: the meter does not move"
    fill(d, "name", "No script family")
    fill(d, "slug", slug)
    d.find_element(By.CSS_SELECTOR, 'input[name="plan"][value="family"]').click()
    fill(d, "email", owner)
    # A weak password first: the server's verdict comes back with the form.
    fill(d, "password", "password1")
    click(d, "signup-submit")
    assert "password-error" in field_errors(d)
    assert d.find_element(By.ID, "slug").get_attribute("value") == slug
    fill(d, "password", pw)
    click(d, "signup-submit")
    assert owner in text_of(d, "signup-sent")
    screenshot(d, T, "01-signup-sent")
    d.get(cp.verification_link(owner))
    assert text_of(d, "verified")
    login(d, cp, owner, pw)
    assert d.current_url == cp.url + "/panel"
    assert "Family:" in text_of(d, "status")
    add_mailbox(d, "solo", "Solo", strong_password())
    assert notice(d) == "The mailbox is ready."
    assert [e.text for e in d.find_elements(By.CSS_SELECTOR, "#mailboxes td.address")] == [f"solo@{slug}.postcell.test"]
    screenshot(d, T, "02-mailbox-created")
    logout(d)
    assert d.current_url == cp.url + "/login"
