#!/usr/bin/env python3
"""The load benchmark's driver: run by bench/load.sh, which builds the binaries.

Each server runs alone (release build, RUST_LOG=off) while wrk sends it the same
workload: `wrk -t1 -c32`, a warm-up then a measured run, POST /webhook with a
signed 167-byte leads.submit. Rounds alternate between the servers of a group;
each figure is the median over the rounds, and every ratio compares servers of
one run, two ways: the ratio of the two medians, and the median of the ratios
within each round (the two servers of a round ran minutes apart at most, so
this one cancels the host's slow drifts). Server CPU per request comes from
/proc/<pid>/stat (user + system) around the measured run: steadier than
requests/s on a machine where wrk and the server share the cores.

Groups:

- receivers: each reference receiver against the same server without
  verification (its own server module: what verifying costs) and against the
  framework's default-configured server (the bar: >= 0.95x requests/s, <= 1.05x
  CPU per request). The bare pair shows what the slow-client guards cost.
- metrics: each receiver with its metrics on and a Prometheus recorder installed
  (METRICS_PORT) against the same receiver built without the feature (<= 1.03x
  CPU per request). The recorder's counter is checked against the requests sent.
  The cost measured is a few per cent, within the spread of 3 rounds, so this
  group runs METRICS_ROUNDS rounds (default 9).
- inbox: the axum and actix receivers with a durable inbox (SQLite; PostgreSQL
  when a server is available) against the same receivers without one ("in
  memory", >= 0.20x requests/s), and the axum receiver's inbox route committing
  every delivery alone (>= 10x). Every request carries a body of its own (a
  unique conversationId, same length), so that no delivery is a duplicate; after
  each run the rows in the inbox are counted against the 2xx answers.
"""

import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SECRET = "load-benchmark-secret"
BODY_FILE = "bench/sample-leads-submit.json"
ROUNDS = int(os.environ.get("ROUNDS", "3"))
METRICS_ROUNDS = int(os.environ.get("METRICS_ROUNDS", "9"))
DURATION = int(os.environ.get("DURATION", "10"))
WARMUP = int(os.environ.get("WARMUP", "2"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
THREADS = int(os.environ.get("THREADS", "1"))
BASE_PORT = int(os.environ.get("BASE_PORT", "18100"))  # below the ephemeral range
# Distinct signed bodies for the inbox group: more than an inbox server takes in
# a warm-up and a run (checked: a run that used them all is an error).
POOL = int(os.environ.get("POOL", "600000"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
INBOX_TABLE = "chatbase_inbox_deliveries"


def release(binary):
    return os.path.join(TARGET_DIR, "release", binary)


def server(name, binary, env=None, store=None, metrics=False):
    return {"name": name, "binary": binary, "env": env or {}, "store": store, "metrics": metrics}


def groups(work, postgres_url):
    off = os.path.join(work, "metrics-off")
    on = os.path.join(work, "metrics-on")
    receivers = {
        "servers": [
            server("axum-receiver", release("axum-receiver")),
            server("bare-axum (same server)", release("bare-axum")),
            server("axum::serve defaults", release("bare-axum"), {"BASELINE": "default"}),
            server("actix-receiver", release("actix-receiver")),
            server("bare-actix (same server)", release("bare-actix")),
            server("HttpServer defaults", release("bare-actix"), {"BASELINE": "default"}),
        ],
        "ratios": [
            ("axum: receiver / axum::serve defaults", "axum-receiver", "axum::serve defaults", "rps >= 0.95, cpu <= 1.05"),
            ("actix-web: receiver / HttpServer defaults", "actix-receiver", "HttpServer defaults", "rps >= 0.95, cpu <= 1.05"),
            ("axum: receiver / same server unverified (verification)", "axum-receiver", "bare-axum (same server)", ""),
            ("actix-web: receiver / same server unverified (verification)", "actix-receiver", "bare-actix (same server)", ""),
            ("axum: same server / defaults (slow-client guards)", "bare-axum (same server)", "axum::serve defaults", ""),
            ("actix-web: same server / defaults (slow-client guards)", "bare-actix (same server)", "HttpServer defaults", ""),
        ],
        "workload": "sample",
    }
    metrics = {
        "servers": [
            server("axum metrics on + recorder", os.path.join(on, "axum-receiver"), metrics=True),
            server("axum metrics off", os.path.join(off, "axum-receiver")),
            server("actix metrics on + recorder", os.path.join(on, "actix-receiver"), metrics=True),
            server("actix metrics off", os.path.join(off, "actix-receiver")),
        ],
        "ratios": [
            ("axum: metrics on + recorder / off", "axum metrics on + recorder", "axum metrics off", "cpu <= 1.03"),
            ("actix-web: metrics on + recorder / off", "actix metrics on + recorder", "actix metrics off", "cpu <= 1.03"),
        ],
        "workload": "sample",
        "rounds": METRICS_ROUNDS,
    }
    inbox_servers = [
        server("axum in memory", release("axum-receiver")),
        server("axum + SQLite inbox", release("axum-receiver"), store="sqlite"),
        server("SQLite, commit per request", release("inbox-per-request"), store="sqlite"),
        server("actix in memory", release("actix-receiver")),
        server("actix + SQLite inbox", release("actix-receiver"), store="sqlite"),
    ]
    inbox_ratios = [
        ("axum: SQLite inbox / in memory", "axum + SQLite inbox", "axum in memory", "rps >= 0.20"),
        ("axum: SQLite inbox / commit per request", "axum + SQLite inbox", "SQLite, commit per request", "rps >= 10"),
        ("actix-web: SQLite inbox / in memory", "actix + SQLite inbox", "actix in memory", "rps >= 0.20"),
        ("actix-web: SQLite inbox / commit per request", "actix + SQLite inbox", "SQLite, commit per request", "rps >= 10"),
    ]
    if postgres_url:
        inbox_servers += [
            server("axum + PostgreSQL inbox", release("axum-receiver"), store="postgres"),
            server("PostgreSQL, commit per request", release("inbox-per-request"), store="postgres"),
            server("actix + PostgreSQL inbox", release("actix-receiver"), store="postgres"),
        ]
        inbox_ratios += [
            ("axum: PostgreSQL inbox / in memory", "axum + PostgreSQL inbox", "axum in memory", "reported"),
            ("axum: PostgreSQL inbox / commit per request", "axum + PostgreSQL inbox", "PostgreSQL, commit per request", "reported"),
            ("actix-web: PostgreSQL inbox / in memory", "actix + PostgreSQL inbox", "actix in memory", "reported"),
            ("actix-web: PostgreSQL inbox / commit per request", "actix + PostgreSQL inbox", "PostgreSQL, commit per request", "reported"),
        ]
    inbox = {"servers": inbox_servers, "ratios": inbox_ratios, "workload": "unique"}
    return {"receivers": receivers, "metrics": metrics, "inbox": inbox}


def sign(body):
    return hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()


def write_scripts(work):
    """wrk's Lua scripts: the one signed sample, or a pool of distinct ones."""
    sample = open(BODY_FILE, "rb").read()
    with open(os.path.join(work, "sample.lua"), "w") as lua:
        lua.write('wrk.method = "POST"\n')
        lua.write("wrk.body = %s\n" % json.dumps(sample.decode()))
        lua.write('wrk.headers["Content-Type"] = "application/json"\n')
        lua.write('wrk.headers["x-chatbase-signature"] = "%s"\n' % sign(sample))
    marker = b'"conversationId":"xxxxxxxx"'
    assert marker in sample
    with open(os.path.join(work, "pool.txt"), "wb") as pool:
        for index in range(POOL):
            body = sample.replace(marker, b'"conversationId":"%08x"' % index)
            pool.write(sign(body).encode() + b" " + body + b"\n")
    # Arguments: the pool file, the index of the first body to send.
    with open(os.path.join(work, "unique.lua"), "w") as lua:
        lua.write(r'''
local bodies, signatures, count, next_index = {}, {}, 0, 0
local prefix
function init(args)
  local start = tonumber(args[2])
  for line in io.lines(args[1]) do
    count = count + 1
    signatures[count] = line:sub(1, 40)
    bodies[count] = line:sub(42)
  end
  next_index = start
  prefix = "POST /webhook HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port ..
    "\r\nContent-Type: application/json\r\nContent-Length: " .. #bodies[1] ..
    "\r\nx-chatbase-signature: "
end
function request()
  next_index = next_index + 1
  if next_index > count then
    -- every distinct body was sent: say so (the driver checks), send the last
    io.stderr:write("POOL EXHAUSTED\n")
    next_index = count
  end
  return prefix .. signatures[next_index] .. "\r\n\r\n" .. bodies[next_index]
end
''')


def wait_for_port(port, process):
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited: {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def peak_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def wrk(url, seconds, script, args=()):
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", script, url]
    if args:
        command += ["--", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    out = done.stdout
    result = {"requests": 0, "rps": 0.0, "non2xx": 0, "errors": "", "exhausted": "POOL EXHAUSTED" in done.stderr}
    for line in out.splitlines():
        line = line.strip()
        if "requests in" in line:
            result["requests"] = int(line.split()[0])
        elif line.startswith("Requests/sec:"):
            result["rps"] = float(line.split()[1])
        elif line.startswith("Non-2xx or 3xx responses:"):
            result["non2xx"] = int(line.split()[-1])
        elif line.startswith("Socket errors"):
            result["errors"] = line
    return result


class Stores:
    """Fresh inbox databases, one per run: SQLite files in the work directory
    (on the same disk as the repository), PostgreSQL databases on a server."""

    def __init__(self, work, postgres_url, psql):
        self.work, self.postgres_url, self.psql, self.count = work, postgres_url, psql, 0

    def create(self, kind):
        self.count += 1
        if kind == "sqlite":
            path = os.path.join(self.work, f"inbox-{self.count}.db")
            return f"sqlite://{path}", path
        name = f"chatbase_load_{os.getpid()}_{self.count}"
        self.sql(f"CREATE DATABASE {name}")
        base, _ = self.postgres_url.rsplit("/", 1)
        return f"{base}/{name}", name

    def rows(self, kind, handle):
        if kind == "sqlite":
            import sqlite3

            with sqlite3.connect(handle) as db:
                return db.execute(f"SELECT count(*) FROM {INBOX_TABLE}").fetchone()[0]
        base, _ = self.postgres_url.rsplit("/", 1)
        out = subprocess.run([self.psql, "-tAq", f"{base}/{handle}", "-c", f"SELECT count(*) FROM {INBOX_TABLE}"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())

    def drop(self, kind, handle):
        if kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(handle + suffix):
                    os.remove(handle + suffix)
        else:
            self.sql(f"DROP DATABASE IF EXISTS {handle}")

    def sql(self, statement):
        subprocess.run([self.psql, "-tAq", self.postgres_url, "-c", statement], check=True,
                       capture_output=True)


def accepted_counted(metrics_port):
    """The receiver's own count of accepted requests, from its /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("chatbase_webhook_requests_total{") and 'outcome="accepted"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def measure(spec, port, work, stores, workload):
    env = dict(os.environ, PORT=str(port), RUST_LOG="off", CHATBASE_WEBHOOK_SECRET=SECRET, **spec["env"])
    for variable in ("CHATBASE_WEBHOOK_PREVIOUS_SECRET", "CHATBASE_WEBHOOK_SECRETS",
                     "CHATBASE_WEBHOOK_SECRETS_FILE", "CHATBASE_INBOX", "METRICS_PORT"):
        if variable not in spec["env"]:
            env.pop(variable, None)
    store = None
    if spec["store"]:
        url, handle = stores.create(spec["store"])
        env["CHATBASE_INBOX"] = url
        store = (spec["store"], handle)
    metrics_port = None
    if spec["metrics"]:
        metrics_port = port + 1000
        env["METRICS_PORT"] = str(metrics_port)
    log = open(os.path.join(work, "server.log"), "w")
    process = subprocess.Popen([spec["binary"]], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}/webhook"
        if workload == "unique":
            script = os.path.join(work, "unique.lua")
            pool = os.path.join(work, "pool.txt")
            warm = wrk(url, WARMUP, script, (pool, "0"))
            # Past every body the warm-up may have sent (completed or in flight).
            start = warm["requests"] + 2 * CONNECTIONS
            before = cpu_ticks(process.pid)
            run = wrk(url, DURATION, script, (pool, str(start)))
        else:
            script = os.path.join(work, "sample.lua")
            warm = wrk(url, WARMUP, script)
            before = cpu_ticks(process.pid)
            run = wrk(url, DURATION, script)
        after = cpu_ticks(process.pid)
        rss = peak_rss_kib(process.pid)
        counted = accepted_counted(metrics_port) if metrics_port else None
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    problems = []
    for phase in (warm, run):
        if phase["errors"]:
            problems.append(phase["errors"])
        # Only an inbox must see each body once (else duplicates are not stored).
        if phase["exhausted"] and spec["store"]:
            problems.append(f"all {POOL} distinct bodies were sent: raise POOL")
    acked = warm["requests"] - warm["non2xx"] + run["requests"] - run["non2xx"]
    rows = None
    if store:
        rows = stores.rows(*store)
        stores.drop(*store)
        # Every acknowledged delivery is in the inbox; a few more may be (committed
        # when wrk stopped, their answers not counted).
        if not acked <= rows <= acked + 4 * CONNECTIONS:
            problems.append(f"{acked} deliveries acknowledged, {rows} in the inbox")
    if counted is not None and counted < acked:
        problems.append(f"{acked} deliveries acknowledged, {counted:.0f} counted as accepted in /metrics")
    return {
        "rps": run["rps"],
        "cpu_us": (after - before) / CLK_TCK * 1e6 / max(run["requests"], 1),
        "rss_kib": rss,
        "non2xx": warm["non2xx"] + run["non2xx"],
        "rows": rows,
        "acked": acked,
        "problems": problems,
    }


def postgres(work):
    """A PostgreSQL server for the inbox group: CHATBASE_TEST_POSTGRES_URL, or a
    throwaway cluster from .ci/postgres.sh (stopped at the end)."""
    url = os.environ.get("CHATBASE_TEST_POSTGRES_URL")
    started = False
    if not url and os.environ.get("LOAD_POSTGRES", "1") != "0":
        done = subprocess.run([".ci/postgres.sh", "start"], capture_output=True, text=True)
        if done.returncode == 0:
            url = done.stdout.strip().split("=", 1)[1]
            started = True
        else:
            print("PostgreSQL unavailable: the inbox group runs without it\n" + done.stderr, file=sys.stderr)
    psql = shutil.which("psql")
    if url and not psql:
        print("psql not found: the inbox group runs without PostgreSQL", file=sys.stderr)
        url = None
    return url, psql, started


def main():
    names = sys.argv[1:] or ["receivers", "metrics", "inbox"]
    work = tempfile.mkdtemp(prefix="chatbase-load-", dir=os.environ.get("LOAD_WORK_DIR", TARGET_DIR))
    postgres_url, psql, started = (None, None, False)
    if "inbox" in names:
        postgres_url, psql, started = postgres(work)
    try:
        # The metrics-on and -off receivers are copied here by bench/load.sh.
        for flavour in ("metrics-on", "metrics-off"):
            source = os.path.join(TARGET_DIR, "load", flavour)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(work, flavour))
        write_scripts(work)
        stores = Stores(work, postgres_url, psql)
        all_groups = groups(work, postgres_url)
        failed = False
        print(f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s after a {WARMUP}s warm-up, "
              f"alternating rounds, medians; signed 167-byte leads.submit")
        for name in names:
            group = all_groups[name]
            rounds = group.get("rounds", ROUNDS)
            results = {spec["name"]: [] for spec in group["servers"]}
            for round_ in range(1, rounds + 1):
                for index, spec in enumerate(group["servers"]):
                    result = measure(spec, BASE_PORT + index, work, stores, group["workload"])
                    results[spec["name"]].append(result)
                    print(f"{name} round {round_}/{rounds}  {spec['name']:<34} {result['rps']:>10,.0f} req/s "
                          f"{result['cpu_us']:6.1f} µs CPU", file=sys.stderr)
                    for problem in result["problems"]:
                        print(f"ERROR {spec['name']}: {problem}", file=sys.stderr)
                        failed = True
            failed |= report(name, group, results, rounds)
        return 1 if failed else 0
    finally:
        if started:
            subprocess.run([".ci/postgres.sh", "stop"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def report(name, group, results, rounds):
    med = {}
    for server_name, runs in results.items():
        rps = [run["rps"] for run in runs]
        med[server_name] = {
            "rps": statistics.median(rps),
            "spread": (max(rps) - min(rps)) / statistics.median(rps) * 100 / 2,
            "cpu_us": statistics.median(run["cpu_us"] for run in runs),
            "rss_mib": max(run["rss_kib"] for run in runs) / 1024,
            "non2xx": sum(run["non2xx"] for run in runs),
            "rows": sum(run["rows"] or 0 for run in runs),
            "acked": sum(run["acked"] for run in runs),
            "stored": any(run["rows"] is not None for run in runs),
        }
    print()
    print(f"### {name} ({rounds} rounds)")
    print()
    print("| server | requests/s | ± | CPU µs/request | peak RSS | non-2xx | stored / acknowledged |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    failed = False
    for server_name, m in med.items():
        stored = f"{m['rows']:,} / {m['acked']:,}" if m["stored"] else ""
        print(f"| {server_name} | {m['rps']:,.0f} | {m['spread']:.1f}% | {m['cpu_us']:.2f} | "
              f"{m['rss_mib']:.1f} MiB | {m['non2xx']} | {stored} |")
        failed |= m["non2xx"] > 0
    print()
    print("Ratios of the medians, then the median of the ratios within each round (and")
    print("their range over the rounds).")
    print()
    print("| ratio | requests/s | CPU per request | requests/s, per round | CPU per request, per round | target |")
    print("|---|---:|---:|---:|---:|---|")
    for label, numerator, denominator, target in group["ratios"]:
        a, b = med[numerator], med[denominator]
        per_round = list(zip(results[numerator], results[denominator]))
        rps = paired([x["rps"] / y["rps"] for x, y in per_round])
        cpu = paired([x["cpu_us"] / y["cpu_us"] for x, y in per_round])
        print(f"| {label} | {a['rps'] / b['rps']:.3f} | {a['cpu_us'] / b['cpu_us']:.3f} | {rps} | {cpu} | {target} |")
    if failed:
        print("\nERROR: some responses were not 2xx: the load did not measure what it should")
    return failed


def paired(ratios):
    """The median of per-round ratios, and their range."""
    return f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f})"


TARGET_DIR = os.environ.get("LOAD_TARGET_DIR", "target")

if __name__ == "__main__":
    sys.exit(main())
