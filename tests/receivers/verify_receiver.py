"""A webhook receiver that checks webhookd's signatures with code that is not
webhookd's: the `standardwebhooks` package (PyPI) for the webhook-* headers
and the `Signature` class of the official `ricloud` client for
Ricloud-Signature. It prints one JSON line per request and answers 200 only
when both verify, 400 otherwise.

usage: verify_receiver.py SECRET   (listens on a free port, printed first)
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ricloud.signing import Signature
from standardwebhooks.webhooks import Webhook

SECRET = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        result = {"path": self.path, "webhook_id": headers.get("webhook-id")}
        try:
            Webhook(SECRET).verify(body, headers)
            result["standard"] = True
        except Exception as error:  # any failure is a verification failure
            result["standard"] = False
            result["standard_error"] = repr(error)
        try:
            signature = Signature.from_header(headers["ricloud-signature"])
            signature.verify(body, SECRET, delta=300)
            result["ricloud"] = True
        except Exception as error:
            result["ricloud"] = False
            result["ricloud_error"] = repr(error)
        self.send_response(200 if result["standard"] and result["ricloud"] else 400)
        self.end_headers()
        print(json.dumps(result), flush=True)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
