"""Database-outage measurement (issue: hardening), run by hand against the
release binary on PostgreSQL. It stops and restarts the machine's real
PostgreSQL, so run nothing else meanwhile; it restarts it even when it fails.

    python3 tests/faults/outage.py --rate 150 --outage 40 [--nodes 3]

Starts `webhookd serve --dev` on a fresh database, a receiver that counts
every `webhook-id`, publishes at --rate events a second from several
threads, stops PostgreSQL for --outage seconds in the middle, then waits
for every accepted event. Prints publish answers and latencies during the
outage, lost and duplicated deliveries.
"""
import argparse, collections, http.server, json, os, subprocess, threading, time, urllib.request

p = argparse.ArgumentParser()
p.add_argument("--rate", type=float, default=150)
p.add_argument("--outage", type=float, default=40)
p.add_argument("--before", type=float, default=10)
p.add_argument("--after", type=float, default=15)
p.add_argument("--binary", default="target/release/webhookd")
p.add_argument("--nodes", type=int, default=1, help="cluster nodes on the database")
a = p.parse_args()
cluster = os.listdir("/etc/postgresql")[0]
def pg(action):
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", action], check=True)

arrivals = collections.Counter()
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        arrivals[self.headers["webhook-id"]] += 1
        self.send_response(200); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer.request_queue_size = 1024  # the default 5 drops connections under load
receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=receiver.serve_forever, daemon=True).start()

db = f"webhookd_outage_{os.getpid()}"
port = 19000 + os.getpid() % 1000
log = open(f"/tmp/{db}.log", "w")
servers = []
for n in range(a.nodes):
    servers.append(subprocess.Popen(
        [a.binary, "serve", "--dev", "--bind", f"127.0.0.1:{port + n}", "--node-id", f"n{n}"],
        env={**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}", "RUST_LOG": "warn"},
        stdout=subprocess.PIPE, stderr=log, text=True))
    if n == 0:
        key = next(l.strip() for l in servers[0].stdout if l.startswith("whk_"))
    time.sleep(1)
bases = [f"http://127.0.0.1:{port + n}" for n in range(a.nodes)]
base = bases[0]
def call(method, path, body=None, timeout=30, via=None):
    req = urllib.request.Request((via or base) + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/health/live", timeout=1); break
    except Exception: time.sleep(0.1)
call("POST", "/api/v1/webhooks", {"url": f"http://127.0.0.1:{receiver.server_address[1]}/h", "events": ["*"]})

accepted, results = set(), []
t0 = time.time(); total = a.before + a.outage + a.after
outage_window = (a.before, a.before + a.outage)
def publisher(offset, step):
    n = offset
    while time.time() - t0 < total:
        due = t0 + n / a.rate
        if due > time.time(): time.sleep(due - time.time())
        start = time.time()
        try:
            status, body = call("POST", "/api/v1/events", {"type": "webhook_config.test", "id": f"e{n}", "data": {"n": n}},
                                via=bases[n % len(bases)])
        except Exception as e:
            status, body = repr(e)[:30], None
        took = time.time() - start
        results.append((start - t0, took, status))
        if status in (200, 202): accepted.add(body["data"]["id"])
        n += step
threads = [threading.Thread(target=publisher, args=(i, 8)) for i in range(8)]
try:
    for t in threads: t.start()
    time.sleep(a.before); stopped = time.time() - t0; pg("stop")
    time.sleep(a.outage); pg("start"); started = time.time() - t0
    for t in threads: t.join()
finally:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "start"], capture_output=True)
deadline = time.time() + 60
while time.time() < deadline and not accepted <= set(arrivals):
    time.sleep(0.5)
for server in servers:
    server.terminate(); server.wait()
during = [r for r in results if stopped <= r[0] < started]
print(f"PostgreSQL down from {stopped:.1f} s to {started:.1f} s")
print(f"publishes: {len(results)}; during the outage {len(during)}: answers {collections.Counter(r[2] for r in during)}")
print(f"  slowest answer during the outage: {max(r[1] for r in during):.2f} s; over 2 s: {sum(r[1] > 2 for r in during)}")
print(f"  slowest answer overall: {max(r[1] for r in results):.2f} s; answers overall {collections.Counter(r[2] for r in results)}")
print(f"accepted events: {len(accepted)}; arrived: {len(accepted & set(arrivals))}; lost: {len(accepted - set(arrivals))}")
print(f"duplicates: {sum(c - 1 for c in arrivals.values() if c > 1)} (events arriving more than once: {sum(c > 1 for c in arrivals.values())})")
subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'], capture_output=True)
