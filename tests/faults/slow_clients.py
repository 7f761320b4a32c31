"""Slow-client measurement (issue: request deadlines), run by hand against
the release binary; not part of the test suite (it takes a minute and
needs its own descriptor limits).

    python3 tests/faults/slow_clients.py --connections 1100 --nofile 1024

Starts `webhookd serve` on a fresh SQLite file under `prlimit --nofile=N`,
opens the slow connections (headers, then a body one byte a second, never
finished; the attacker never closes its side), and meanwhile sends one
normal request every 0.25 s. Prints when the server closed the slow
connections and how long normal requests took, over time.
"""
import argparse, os, resource, socket, subprocess, sys, tempfile, threading, time, urllib.request

p = argparse.ArgumentParser()
p.add_argument("--connections", type=int, default=1100)
p.add_argument("--nofile", type=int, default=1024)
p.add_argument("--binary", default="target/release/webhookd")
p.add_argument("--request-timeout", default="30s")
p.add_argument("--duration", type=float, default=60)
a = p.parse_args()

resource.setrlimit(resource.RLIMIT_NOFILE, (8192, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
tmp = tempfile.mkdtemp()
port = 18000 + os.getpid() % 1000
server = subprocess.Popen(
    ["prlimit", f"--nofile={a.nofile}", a.binary, "serve", "--bind", f"127.0.0.1:{port}",
     "--request-timeout", a.request_timeout],
    env={**os.environ, "DATABASE_URL": f"sqlite://{tmp}/w.db", "RUST_LOG": "warn"},
    stdout=subprocess.PIPE, stderr=open(f"{tmp}/server.log", "w"), text=True)
key = None
for line in server.stdout:
    if line.startswith("whk_"):
        key = line.strip(); break
base = f"http://127.0.0.1:{port}"
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/health/live", timeout=1); break
    except Exception:
        time.sleep(0.1)

t0 = time.time()
closed_at = [None] * a.connections
opened = [False] * a.connections
socks = []
head = (f"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{").encode()
for i in range(a.connections):
    s = socket.socket(); s.setblocking(False)
    try:
        s.connect_ex(("127.0.0.1", port))
    except OSError:
        pass
    socks.append(s)

def attacker():
    sent_head = [False] * a.connections
    while time.time() - t0 < a.duration:
        for i, s in enumerate(socks):
            if closed_at[i] is not None:
                continue
            try:
                s.send(b" " if sent_head[i] else head)
                sent_head[i] = True; opened[i] = True
            except BlockingIOError:
                pass
            except OSError:
                if opened[i]:
                    closed_at[i] = time.time() - t0
            try:
                if s.recv(4096) == b"" and opened[i]:
                    closed_at[i] = time.time() - t0
            except BlockingIOError:
                pass
            except OSError:
                if opened[i]:
                    closed_at[i] = time.time() - t0
        time.sleep(1)

normal = []
def prober():
    while time.time() - t0 < a.duration:
        start = time.time()
        try:
            req = urllib.request.Request(base + "/api/v1/webhooks", headers={"Authorization": f"Bearer {key}"})
            status = urllib.request.urlopen(req, timeout=60).status
        except Exception as e:
            status = repr(e)[:40]
        normal.append((round(start - t0, 2), round(time.time() - start, 3), status))
        time.sleep(0.25)

threads = [threading.Thread(target=attacker), threading.Thread(target=prober)]
for t in threads: t.start()
for t in threads: t.join()
server.terminate(); server.wait()
closes = sorted(c for c in closed_at if c is not None)
print(f"slow connections: {a.connections}, got through to the server: {sum(opened)}, closed by the server: {len(closes)}")
if closes:
    print(f"  closed after: first {closes[0]:.1f} s, median {closes[len(closes)//2]:.1f} s, last {closes[-1]:.1f} s")
slow = [n for n in normal if n[1] > 1 or n[2] != 200]
print(f"normal requests: {len(normal)}, slower than 1 s or failed: {len(slow)}, max {max(n[1] for n in normal):.2f} s")
late = [n[0] + n[1] for n in slow]
if late:
    print(f"  the last slow one was sent at {slow[-1][0]} s and answered at {max(late):.1f} s")
print("server log:", open(f"{tmp}/server.log").read().strip()[-600:])
