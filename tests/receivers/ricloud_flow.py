"""Drives webhookd's configs API with the official `ricloud` client, unchanged,
pointed at webhookd by RICLOUD_URL and RICLOUD_TOKEN. Webhooks go to ricloud's
own sample receiver (`ricloud.webhooks.app`, Flask), run with the config's
secret as WEBHOOK_SECRET so that it checks every Ricloud-Signature.

Exits 0 and prints `FLOW OK` when every step held; any failed check raises.
"""
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import ricloud
from ricloud.exceptions import RequestError


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def unwrap(resource):
    """ricloud's Task/Key helpers wrap the answer as attrs={"attrs": …}."""
    inner = resource.attrs.get("attrs")
    return inner if inner is not None else resource


def finished_task(task_id):
    task = ricloud.Task.retrieve(task_id)
    return task if task.state in ("succeeded", "failed") else None


def tasks_for(config_id):
    return [t for t in ricloud.Task.list(limit=1000) if t.target == config_id]


def start_sample_receiver(secret, port):
    code = (
        "import sys\n"
        "from ricloud.webhooks import app\n"
        "app.config['WEBHOOK_SECRET'] = sys.argv[1]\n"
        "app.run(host='127.0.0.1', port=int(sys.argv[2]))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, secret, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    wait_for(up, "the sample receiver to listen")
    return process, lines


class FailingHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port = free_port()
    url = "http://127.0.0.1:%d/webhooks" % port

    # Create: state new, a secret, and a test task started at once. The
    # receiver is not running yet, so that first test fails.
    config = ricloud.WebhookConfig.create(url=url)
    assert config.resource == "webhook_config" and config.state == "new", config
    assert config.secret.startswith("whsec_"), config
    first = wait_for(lambda: tasks_for(config.id), "the creation's test task")[0]
    first = wait_for(lambda: finished_task(first.id), "the first test to end")
    assert first.type == "webhook_config.test" and first.state == "failed", first
    assert ricloud.WebhookConfig.retrieve(config.id).state == "invalid"

    # With ricloud's sample receiver up, a test succeeds and makes it valid.
    receiver, output = start_sample_receiver(config.secret, port)
    try:
        task = unwrap(ricloud.WebhookConfig.test_with_id(config.id))
        assert task.state in ("pending", "processing", "succeeded"), task
        done = wait_for(lambda: finished_task(task.id), "the test task")
        assert done.state == "succeeded", done
        assert ricloud.WebhookConfig.retrieve(config.id).state == "valid"
        wait_for(lambda: any("Test event received!" in line for line in output),
                 "the sample receiver to accept the signed test event")

        # Retrieve and list, with the state filter.
        assert ricloud.WebhookConfig.retrieve(config.id).url == url
        assert config.id in [c.id for c in ricloud.WebhookConfig.list(state="valid")]
        assert config.id not in [c.id for c in ricloud.WebhookConfig.list(state="invalid")]

        # A URL update re-tests (same receiver under another name).
        new_url = "http://localhost:%d/webhooks" % port
        updated = ricloud.WebhookConfig.update_with_id(config.id, url=new_url)
        assert updated.url == new_url and updated.state == "new", updated
        wait_for(lambda: ricloud.WebhookConfig.retrieve(config.id).state == "valid",
                 "the re-test after the URL change")

        # test_with_id on a retrieved config too.
        again = unwrap(ricloud.WebhookConfig.retrieve(config.id).test())
        assert wait_for(lambda: finished_task(again.id), "the second test").state == "succeeded"
    finally:
        receiver.terminate()

    # Deactivate through an update: hidden from the default list.
    off = ricloud.WebhookConfig.update_with_id(config.id, state="deactivated")
    assert off.state == "deactivated", off
    assert config.id not in [c.id for c in ricloud.WebhookConfig.list()]
    assert config.id in [c.id for c in ricloud.WebhookConfig.list(state="deactivated")]
    try:
        ricloud.WebhookConfig.update_with_id(config.id, state="valid")
        raise AssertionError("state=valid was accepted")
    except RequestError as error:
        assert "invalid-parameter" in str(error), error

    # Delete: gone.
    ricloud.WebhookConfig.delete_with_id(config.id)
    try:
        ricloud.WebhookConfig.retrieve(config.id)
        raise AssertionError("a deleted config was retrieved")
    except RequestError as error:
        assert "404" in str(error) and "not-found" in str(error), error

    # A receiver that answers 500 leaves the config invalid and its task failed.
    failing = ThreadingHTTPServer(("127.0.0.1", 0), FailingHandler)
    threading.Thread(target=failing.serve_forever, daemon=True).start()
    bad = ricloud.WebhookConfig.create(url="http://127.0.0.1:%d/webhooks" % failing.server_address[1])
    bad_task = wait_for(lambda: tasks_for(bad.id), "the failing config's task")[0]
    bad_task = wait_for(lambda: finished_task(bad_task.id), "the failing test")
    assert bad_task.state == "failed" and bad_task.results["status_code"] == 500, bad_task
    assert ricloud.WebhookConfig.retrieve(bad.id).state == "invalid"
    failing.shutdown()

    # The calling key and the organisation.
    key = unwrap(ricloud.Key.current())
    assert key.resource == "key" and "webhooks" in key.scopes, key
    organisation = ricloud.Organisation.retrieve()
    assert organisation.resource == "organisation", organisation
    print("FLOW OK")


if __name__ == "__main__":
    main()
