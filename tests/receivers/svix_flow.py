"""An application written against the official Svix Python SDK (PyPI `svix`,
unchanged), pointed at webhookd by `server_url` alone. It runs two
receivers of its own — one that verifies every request with
`svix.webhooks.Webhook` and answers 200, one that answers 500 — and goes
through what such an application does: event types, applications (uid,
paging), endpoints (secret, rotation, headers, disable), messages
(idempotency key, eventId, byte-exact payload), attempts, resend, recover,
the app portal, errors, delete. Any failed expectation raises; "OK" last.

usage: svix_flow.py SERVER_URL ENVIRONMENT_KEY
"""
import json
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from svix.api import (
    AppPortalAccessIn,
    ApplicationIn,
    ApplicationListOptions,
    ApplicationPatch,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointPatch,
    EndpointSecretRotateIn,
    EndpointUpsertIn,
    EventExampleIn,
    EventTypeIn,
    EventTypePatch,
    MessageAttemptListByEndpointOptions,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    RecoverIn,
    Svix,
    SvixOptions,
)
from svix.exceptions import HttpError, HTTPValidationError
from svix.webhooks import Webhook

SERVER, KEY = sys.argv[1], sys.argv[2]
svix = Svix(KEY, SvixOptions(server_url=SERVER))
deadline_seconds = 20


def wait_for(what, check):
    """Polls `check` until it returns something truthy (a condition, not a sleep)."""
    until = time.monotonic() + deadline_seconds
    while time.monotonic() < until:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Received:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()

    def add(self, body, headers):
        with self.lock:
            self.requests.append((body, headers))

    def all(self):
        with self.lock:
            return list(self.requests)


def serve(status, received):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.add(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            self.end_headers()
            if status >= 400:
                self.wfile.write(b"boom")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


good, failing = Received(), Received()
good_url, failing_url = serve(200, good), serve(500, failing)

# -- health and event types
svix.health.get()
svix.event_type.create(EventTypeIn(name="invoice.paid", description="An invoice was paid"))
svix.event_type.create(
    EventTypeIn(
        name="user.signed-up",
        description="A user signed up",
        schemas={"1": {"type": "object", "required": ["email"], "examples": [{"email": "a@b.c"}]}},
    )
)
try:
    svix.event_type.create(EventTypeIn(name="invoice.paid", description="again"))
    raise AssertionError("a second event type of one name is refused")
except HttpError as error:
    assert error.status_code == 409, error.status_code
names = [t.name for t in svix.event_type.list().data]
assert "invoice.paid" in names and "user.signed-up" in names, names
assert svix.event_type.get("user.signed-up").schemas["1"]["required"] == ["email"]
patched = svix.event_type.patch("invoice.paid", EventTypePatch(description="Paid"))
assert patched.description == "Paid"

# -- applications: uid, get_or_create, paging to done
app = svix.application.create(ApplicationIn(name="Customer 1", uid="customer-1", metadata={"tier": "gold"}))
assert app.id.startswith("app_") and app.uid == "customer-1", app
again = svix.application.get_or_create(ApplicationIn(name="Customer 1", uid="customer-1"))
assert again.id == app.id
try:
    svix.application.create(ApplicationIn(name="dup", uid="customer-1"))
    raise AssertionError("a second application with one uid is refused")
except HttpError as error:
    assert error.status_code == 409
for n in range(2, 6):
    svix.application.create(ApplicationIn(name=f"Customer {n}", uid=f"customer-{n}"))
seen, iterator = [], None
while True:
    page = svix.application.list(ApplicationListOptions(limit=2, iterator=iterator))
    assert len(page.data) <= 2
    seen += [a.uid for a in page.data]
    iterator = page.iterator
    if page.done:
        break
assert seen == [f"customer-{n}" for n in range(1, 6)], seen
assert svix.application.get("customer-1").id == app.id
renamed = svix.application.patch(app.id, ApplicationPatch(name="Customer One"))
assert renamed.name == "Customer One" and renamed.metadata == {"tier": "gold"}
replaced = svix.application.upsert("customer-1", ApplicationIn(name="Customer 1", uid="customer-1"))
assert replaced.id == app.id and replaced.metadata == {}

# -- endpoints: create, uid, secret, headers
endpoint = svix.endpoint.create(
    app.id,
    EndpointIn(
        url=good_url,
        uid="main",
        description="Main receiver",
        event_types=["invoice.paid"],
        metadata={"team": "billing"},
        headers={"X-Tenant": "one"},
    ),
)
assert endpoint.id.startswith("ep_") and endpoint.uid == "main", endpoint
assert endpoint.event_types == ["invoice.paid"] and endpoint.metadata == {"team": "billing"}
assert svix.endpoint.get("customer-1", "main").id == endpoint.id
assert [e.id for e in svix.endpoint.list(app.id).data] == [endpoint.id]
secret = svix.endpoint.get_secret(app.id, endpoint.id).key
assert secret.startswith("whsec_")
assert svix.endpoint.get_headers(app.id, endpoint.id).headers == {"x-tenant": "one"}
svix.endpoint.set_headers(app.id, endpoint.id, EndpointHeadersIn(headers={"X-A": "1", "X-B": "2"}))
svix.endpoint.patch_headers(
    app.id, endpoint.id, EndpointHeadersPatchIn(headers={"X-C": "3"}, delete_headers=["X-A"])
)
assert svix.endpoint.get_headers(app.id, endpoint.id).headers == {"x-b": "2", "x-c": "3"}

# -- messages: idempotency key, eventId, byte-exact payload, svix signatures
payload = {"amount": 12345678901234567890, "ratio": 1.0, "name": "caf\u00e9", "nested": {"a": [1, 2]}}
first = svix.message.create(
    app.id,
    MessageIn(event_type="invoice.paid", payload=payload, event_id="evt-1"),
    MessageCreateOptions(idempotency_key="create-evt-1"),
)
repeat = svix.message.create(
    app.id,
    MessageIn(event_type="invoice.paid", payload=payload, event_id="evt-1"),
    MessageCreateOptions(idempotency_key="create-evt-1"),
)
assert first.id.startswith("msg_") and repeat.id == first.id, (first.id, repeat.id)
try:
    svix.message.create(app.id, MessageIn(event_type="invoice.paid", payload=payload, event_id="evt-1"))
    raise AssertionError("a second message with one eventId is refused")
except HttpError as error:
    assert error.status_code == 409, error.status_code
body, headers = wait_for("the delivery", lambda: good.all())[0]
assert headers["svix-id"] == first.id and headers["webhook-id"] == first.id, headers
Webhook(secret).verify(body, headers)
assert b"12345678901234567890" in body and b"1.0" in body, body
assert json.loads(body) == payload
assert headers["x-b"] == "2" and headers["x-c"] == "3"
assert len(good.all()) == 1, "the repeat sent nothing"
assert svix.message.get(app.id, "evt-1").id == first.id
assert svix.message.get(app.id, first.id, MessageGetOptions(with_content=True)).payload == payload
assert svix.message.get(app.id, first.id).payload == {}, "SDK v2 asks without content"

# -- attempts by endpoint and by message
attempts = wait_for(
    "the attempt",
    lambda: svix.message_attempt.list_by_endpoint(app.id, endpoint.id).data,
)
assert attempts[0].status == 0 and attempts[0].response_status_code == 200, attempts[0]
assert attempts[0].msg_id == first.id and attempts[0].endpoint_id == endpoint.id
by_msg = svix.message_attempt.list_by_msg(app.id, first.id).data
assert [a.id for a in by_msg] == [attempts[0].id]
assert svix.message_attempt.get(app.id, first.id, attempts[0].id).url == good_url
destinations = svix.message_attempt.list_attempted_destinations(app.id, first.id).data
assert [d.id for d in destinations] == [endpoint.id] and destinations[0].status == 0

# -- resend: the same message again, same svix-id
svix.message_attempt.resend(app.id, first.id, endpoint.id)
wait_for("the resend", lambda: len(good.all()) == 2)
assert good.all()[1][1]["svix-id"] == first.id

# -- a failing endpoint: its attempts carry the 500 and the body
broken = svix.endpoint.create(app.id, EndpointIn(url=failing_url, description="Broken"))
second = svix.message.create(app.id, MessageIn(event_type="invoice.paid", payload={"n": 2}))
failed = wait_for(
    "a failed attempt",
    lambda: svix.message_attempt.list_by_endpoint(
        app.id, broken.id, MessageAttemptListByEndpointOptions(status=2)
    ).data,
)
assert failed[0].response_status_code == 500 and failed[0].response == "boom", failed[0]
assert failed[0].status == 2 and failed[0].msg_id == second.id
stats = svix.endpoint.get_stats(app.id, broken.id)
assert stats.pending + stats.fail >= 1, stats
recovering = svix.endpoint.recover(
    app.id, broken.id, RecoverIn(since=datetime.now(timezone.utc) - timedelta(hours=1))
)
assert recovering.status == "running" and recovering.task == "endpoint.recover", recovering

# -- rotation: the new secret signs, the old one still does during the overlap
svix.endpoint.rotate_secret(app.id, endpoint.id, EndpointSecretRotateIn())
new_secret = svix.endpoint.get_secret(app.id, endpoint.id).key
assert new_secret != secret
third = svix.message.create(app.id, MessageIn(event_type="invoice.paid", payload={"n": 3}))
body, headers = wait_for(
    "the third message", lambda: [r for r in good.all() if r[1]["svix-id"] == third.id]
)[0]
Webhook(new_secret).verify(body, headers)
Webhook(secret).verify(body, headers)

# -- messages list, newest first, paged to done
listed, iterator = [], None
while True:
    page = svix.message.list(app.id, MessageListOptions(limit=1, iterator=iterator))
    listed += [m.id for m in page.data]
    iterator = page.iterator
    if page.done:
        break
assert listed == [third.id, second.id, first.id], listed

# -- PUT creates an endpoint by uid; send-example goes to that endpoint only
upserted = svix.endpoint.upsert(
    app.id, "by-put", EndpointUpsertIn(url=good_url, event_types=["user.signed-up"])
)
assert upserted.uid == "by-put" and upserted.event_types == ["user.signed-up"], upserted
example = svix.endpoint.send_example(app.id, "by-put", EventExampleIn(event_type="user.signed-up"))
body, headers = wait_for(
    "the example", lambda: [r for r in good.all() if r[1]["svix-id"] == example.id]
)[0]
assert json.loads(body) == {"email": "a@b.c"}, body
Webhook(svix.endpoint.get_secret(app.id, "by-put").key).verify(body, headers)
svix.endpoint.delete(app.id, "by-put")

# -- archived event types leave the list, not the catalog
svix.event_type.create(EventTypeIn(name="old.thing", description="retired"))
svix.event_type.delete("old.thing")
assert "old.thing" not in [t.name for t in svix.event_type.list().data]
assert svix.event_type.get("old.thing").archived is True

# -- a message may create its application
made = svix.message.create(
    "customer-new",
    MessageIn(
        event_type="invoice.paid",
        payload={"n": 4},
        application=ApplicationIn(name="New customer", uid="customer-new"),
    ),
)
assert made.id.startswith("msg_")
assert svix.application.get("customer-new").name == "New customer"

# -- disable
disabled = svix.endpoint.patch(app.id, endpoint.id, EndpointPatch(disabled=True))
assert disabled.disabled is True
assert svix.endpoint.get(app.id, endpoint.id).disabled is True

# -- the app portal: a console link and a key for this application only
access = svix.authentication.app_portal_access(app.id, AppPortalAccessIn())
with httpx.Client(follow_redirects=True) as browser:
    page = browser.get(access.url)
    assert page.status_code == 200, page.status_code
    assert good_url in page.text or "Main receiver" in page.text, page.text[:500]
scoped = Svix(access.token, SvixOptions(server_url=SERVER))
assert {e.id for e in scoped.endpoint.list(app.id).data} == {endpoint.id, broken.id}
try:
    scoped.application.get("customer-2")
    raise AssertionError("an application key reaches its application only")
except HttpError as error:
    assert error.status_code == 404

# -- errors as the SDK knows them
try:
    svix.application.get("app_999999")
    raise AssertionError("an unknown application is a 404")
except HttpError as error:
    assert error.status_code == 404 and error.code == "not_found", (error.status_code, error.code)
try:
    svix.endpoint.create(app.id, EndpointIn(url="not a url"))
    raise AssertionError("a bad URL is refused")
except HTTPValidationError as error:
    assert error.status_code == 422
    assert error.detail[0].loc == ["body", "url"], error.detail
try:
    Svix("whk_wrong", SvixOptions(server_url=SERVER)).application.list()
    raise AssertionError("a wrong token is refused")
except HttpError as error:
    assert error.status_code == 401

# -- delete
svix.endpoint.delete(app.id, broken.id)
try:
    svix.endpoint.get(app.id, broken.id)
    raise AssertionError("a deleted endpoint is gone")
except HttpError as error:
    assert error.status_code == 404
svix.application.delete("customer-5")
try:
    svix.application.get("customer-5")
    raise AssertionError("a deleted application is gone")
except HttpError as error:
    assert error.status_code == 404

print("OK")
