"""The console in a real browser (Debian's Chromium, driven by Playwright).

Run by tests/api/console.rs against a live webhookd; everything it needs
comes in the environment:
  WEBHOOKD_URL   the server, e.g. http://127.0.0.1:43123
  KEY_A          an API key (scope webhooks) of organisation A
  KEY_B          a key of organisation B, which has one endpoint
  B_ENDPOINT     the name of B's endpoint
  RECEIVER_URL   a receiver that fails its first request and accepts the rest
  SCREENSHOTS    where to save screenshots (optional)
Exits non-zero with the failed check's message.
"""
import json
import os
import re
import sys
import time
import urllib.request

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["WEBHOOKD_URL"]
KEY_A = os.environ["KEY_A"]
KEY_B = os.environ["KEY_B"]
B_ENDPOINT = os.environ["B_ENDPOINT"]
RECEIVER = os.environ["RECEIVER_URL"]
SHOTS = os.environ.get("SCREENSHOTS")
XSS_NAME = "<img src=x onerror=alert(1)>"

expect.set_options(timeout=15_000)


def api(method, path, key, body=None):
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return response.status, json.loads(response.read() or b"null")


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def reload_until(page, locator_text, seconds=20):
    """Reloads until the page shows `locator_text` (deliveries arrive on
    their own time; the page is server-rendered)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if page.get_by_text(locator_text, exact=False).count() > 0:
            return
        time.sleep(0.3)
        page.reload()
    raise AssertionError(f"'{locator_text}' did not appear in {seconds}s")


def sign_in(page):
    response = page.goto(BASE + "/console")
    check(page.url.endswith("/console/login"), f"not sent to sign in: {page.url}")
    csp = response.headers.get("content-security-policy", "")
    check("script-src 'self'" in csp and "unsafe-inline" not in csp, f"CSP: {csp}")
    shot(page, "sign-in")
    page.fill("#key", KEY_A)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/endpoints$"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "webhookd_console")
    check(cookie["httpOnly"] and cookie["sameSite"] == "Strict", f"cookie: {cookie}")
    check(KEY_A not in json.dumps(page.context.cookies()), "the key is in a cookie")


def create_endpoint(page, url, name, retries="3"):
    page.goto(BASE + "/console/endpoints/new")
    page.fill("#url", url)
    page.fill("#events", "*")
    page.fill("#name", name)
    page.fill("#retry_count", retries)
    page.click("form.endpoint button[type=submit]")


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"],
        )
        dialogs = []
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.on("page", lambda pg: pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss())))
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        sign_in(page)

        # A bad URL: the API's message next to the field, nothing stored.
        create_endpoint(page, "not a url", "Broken")
        expect(page.locator("p.error[data-field=url]")).to_be_visible()
        # A good one, with no retries: the receiver's first answer (500) fails it.
        create_endpoint(page, RECEIVER, "Orders", retries="0")
        expect(page.locator("p.notice")).to_contain_text("Endpoint created")
        expect(page).to_have_url(re.compile(r"/console/endpoints/\d+\?notice=created$"))
        endpoint_url = page.url.split("?")[0]
        endpoint_id = endpoint_url.rsplit("/", 1)[1]

        # A publish through the API: its delivery and attempt appear.
        status, _ = api("POST", "/api/v1/events", KEY_A, {"type": "order.placed", "data": {"n": 1}})
        check(status == 202, f"publish answered {status}")
        page.goto(endpoint_url + "?status=failed")
        reload_until(page, "order.placed")
        page.locator("details.delivery summary").first.click()
        expect(page.locator("table.attempts td.number").nth(1)).to_have_text("500")
        shot(page, "endpoint")

        # Retry it: the receiver accepts this time.
        page.locator("details.delivery").first.get_by_role("button", name="Retry").click()
        expect(page.locator("p.notice")).to_contain_text("queued again")
        page.goto(endpoint_url + "?status=succeeded")
        reload_until(page, "order.placed")

        # Rotate the secret; it is shown only on an explicit click.
        page.goto(endpoint_url)
        check(page.locator("code.secret").count() == 0, "the secret is shown without a click")
        page.get_by_role("button", name="Reveal secret").click()
        first_secret = page.locator("code.secret").inner_text()
        check(first_secret.startswith("whsec_"), f"secret: {first_secret}")
        page.get_by_role("button", name="Rotate secret").click()
        expect(page.locator("p.notice")).to_contain_text("rotated")
        page.get_by_role("button", name="Reveal secret").click()
        second_secret = page.locator("code.secret").inner_text()
        check(second_secret != first_secret, "rotation kept the secret")

        # Change the URL; the history shows it and the old URL as it was.
        page.goto(endpoint_url + "/edit")
        page.fill("#url", RECEIVER + "?v=2")
        page.click("form.endpoint button[type=submit]")
        expect(page.locator("p.notice")).to_contain_text("Saved")
        page.goto(endpoint_url + "/history")
        expect(page.locator("ol.timeline")).to_contain_text("UrlUpdated")
        # The console's changes are the API's events, with its actor.
        expect(page.locator("ol.timeline")).to_contain_text("console:key:")
        content = page.content()
        check(first_secret not in content and second_secret not in content, "a secret in the history")
        check("whsec_[redacted]" in content, "the history shows no redacted secret")
        page.get_by_text("See the endpoint as it was then").first.click()
        expect(page.locator("[data-as-of-url]")).to_have_text(RECEIVER)
        shot(page, "history")

        # A hostile name is text, not markup.
        create_endpoint(page, RECEIVER, XSS_NAME)
        expect(page.locator("p.notice")).to_contain_text("Endpoint created")
        page.goto(BASE + "/console/endpoints")
        expect(page.get_by_text(XSS_NAME)).to_be_visible()
        check(page.locator("img[src=x]").count() == 0, "the name became an element")
        page.wait_for_timeout(300)
        check(not dialogs, f"a script ran: {dialogs}")
        shot(page, "endpoints")

        page.goto(BASE + "/console/event-types")
        expect(page.locator("table.list")).to_contain_text("order.placed")
        shot(page, "event-types")

        # A form posted without (or with a wrong) CSRF token is refused.
        for form in ({}, {"csrf": "forged"}):
            answer = context.request.post(f"{endpoint_url}/rotate", form=form)
            check(answer.status == 403, f"rotate without its CSRF token: {answer.status}")

        # A portal link opens B's console, in a fresh browser: B's only.
        status, link = api("POST", "/api/v1/portal-links", KEY_B, {"ttl": "1h"})
        check(status == 201, f"portal link: {status}")
        portal = browser.new_context(viewport={"width": 1200, "height": 900})
        portal_page = portal.new_page()
        portal_page.goto(link["data"]["url"])
        expect(portal_page).to_have_url(re.compile(r"/console/endpoints$"))
        expect(portal_page.locator("table.list")).to_contain_text(B_ENDPOINT)
        check("Orders" not in portal_page.content(), "B sees A's endpoint")
        shot(portal_page, "portal")
        other = portal_page.goto(f"{BASE}/console/endpoints/{endpoint_id}")
        check(other.status == 404, f"A's endpoint through B's session: {other.status}")
        # Once only.
        again = browser.new_context().new_page()
        used = again.goto(link["data"]["url"])
        check(used.status == 404, f"a used link opened again: {used.status}")

        # Without JavaScript the basic flows work the same (plain forms).
        plain = browser.new_context(java_script_enabled=False).new_page()
        plain.goto(BASE + "/console/login")
        plain.fill("#key", KEY_A)
        plain.click("button[type=submit]")
        expect(plain).to_have_url(re.compile(r"/console/endpoints$"))
        plain.goto(BASE + "/console/endpoints/new")
        plain.fill("#url", RECEIVER)
        plain.fill("#events", "*")
        plain.fill("#name", "Made without JavaScript")
        plain.click("form.endpoint button[type=submit]")
        expect(plain.locator("p.notice")).to_contain_text("Endpoint created")
        plain.goto(BASE + "/console/endpoints")
        expect(plain.locator("table.list")).to_contain_text("Made without JavaScript")

        # Logging out ends the session.
        page.goto(BASE + "/console/endpoints")
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(re.compile(r"/console/login$"))
        page.goto(BASE + "/console/endpoints")
        expect(page).to_have_url(re.compile(r"/console/login$"))

        browser.close()
    print("console: every browser check passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"console check failed: {failure}", file=sys.stderr)
        sys.exit(1)
