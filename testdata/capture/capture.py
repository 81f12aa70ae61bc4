"""Captures a real Envoy's admin documents for one scenario.

Usage (with the oracle virtualenv made by scripts/setup.sh):

    .venv/oracle/bin/python testdata/capture/capture.py \
        --envoy "$(scripts/envoy-path)" --scenario sidecar --out testdata/real/sidecar

It starts our small xDS server (ADS + SDS) on 127.0.0.1, starts Envoy with an Istio-like bootstrap
pointing at it (admin on a free 127.0.0.1 port), makes the scenario's pushes one by one and waits for
Envoy's ACK or NACK of each, waits for `/memory` to settle, then saves these admin responses exactly as
Envoy printed them (files over 256 KiB gzipped, mtime 0):

    config_dump.json   /config_dump?include_eds
    clusters.json      /clusters?format=json
    memory.json        /memory
    server_info.json   /server_info
    stats.json         /stats?format=json

Envoy and the server are stopped on every path; every wait has a timeout and the whole run has a
deadline (--deadline, default 55 s).
"""

import argparse
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scenario_gateway  # noqa: E402
import scenario_registry_only  # noqa: E402
import scenario_sidecar  # noqa: E402
from xds_server import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, SHORT_NAMES, XdsServer  # noqa: E402

SCENARIOS = {"sidecar": scenario_sidecar.Sidecar, "gateway": scenario_gateway.Gateway,
             "registry-only": scenario_registry_only.RegistryOnly}
CAPTURES = [
    ("config_dump.json", "/config_dump?include_eds"),
    ("clusters.json", "/clusters?format=json"),
    ("memory.json", "/memory"),
    ("server_info.json", "/server_info"),
    ("stats.json", "/stats?format=json"),
]
GZIP_OVER = 256 * 1024
TYPE_ORDER = [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET]
MEMORY_STEADY_BYTES = 64 * 1024


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self, cap):
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("capture deadline passed")
        return min(cap, remaining)


def log(message):
    print(f"capture: {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin_get(port, path, timeout=10.0):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Envoy:
    """One Envoy process: started in its own session, stopped with SIGTERM, then SIGKILL."""

    def __init__(self, binary, bootstrap_path, workdir, admin_port, concurrency=2):
        self.binary = binary
        self.concurrency = concurrency
        self.bootstrap_path = bootstrap_path
        self.workdir = workdir
        self.admin_port = admin_port
        self.log_path = os.path.join(workdir, "envoy.log")
        self.process = None

    def start(self, deadline, admin_timeout=20):
        """Starts Envoy and waits for its admin endpoint. Admin runs on the main thread, which a
        big initial xDS push keeps busy: callers serving thousands of clusters wait longer."""
        # Each Envoy on the machine needs its own base id (shared memory and domain socket names).
        for attempt in range(3):
            base_id = (os.getpid() * 7 + attempt * 7919 + int(time.time())) % 60000 + 1000
            command = [self.binary, "-c", self.bootstrap_path, "--base-id", str(base_id),
                       "--concurrency", str(self.concurrency), "-l", "warning", "--log-path", self.log_path,
                       "--drain-time-s", "600", "--parent-shutdown-time-s", "900"]
            stdout = open(os.path.join(self.workdir, "envoy.stdout"), "ab")
            try:
                self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout,
                                                stderr=subprocess.STDOUT, start_new_session=True)
            finally:
                stdout.close()
            log(f"envoy pid {self.process.pid}, base id {base_id}, admin 127.0.0.1:{self.admin_port}")
            if self._wait_admin(deadline, admin_timeout):
                return
            if "unable to bind domain socket" not in self.log_tail():
                break
            self.stop()
        raise RuntimeError(f"Envoy did not start; log:\n{self.log_tail()}")

    def _wait_admin(self, deadline, timeout):
        end = time.monotonic() + deadline.left(timeout)
        while time.monotonic() < end:
            if self.process.poll() is not None:
                return False
            try:
                admin_get(self.admin_port, "/server_info", timeout=1)
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def wait_live(self, deadline):
        end = time.monotonic() + deadline.left(30)
        state = None
        while time.monotonic() < end:
            self.check_running()
            _, body = admin_get(self.admin_port, "/server_info", timeout=2)
            state = json.loads(body).get("state")
            if state == "LIVE":
                return
            time.sleep(0.2)
        raise TimeoutError(f"Envoy stayed {state}")

    def check_running(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"Envoy exited with {self.process.returncode}; log:\n{self.log_tail()}")

    def log_tail(self, lines=30):
        text = ""
        for name in ("envoy.log", "envoy.stdout"):
            try:
                with open(os.path.join(self.workdir, name), errors="replace") as f:
                    text += "".join(f.readlines()[-lines:])
            except OSError:
                pass
        return text

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log(f"envoy pid {self.process.pid} ignored SIGTERM; killing it")
            self.process.kill()
            self.process.wait(timeout=5)


def push_step(server, step):
    for type_url in TYPE_ORDER:
        if type_url in step.resources:
            server.push(type_url, step.version, step.resources[type_url])


def wait_step(server, envoy, step, deadline):
    for type_url in TYPE_ORDER:
        if type_url not in step.resources:
            continue
        envoy.check_running()
        expect = step.expectation(type_url)
        if expect == "sent":
            server.wait_sent(type_url, timeout=deadline.left(25))
            log(f"{step.label}: {SHORT_NAMES[type_url]} version {step.version} sent (no answer awaited)")
            continue
        messages = server.wait_settled(type_url, expect, timeout=deadline.left(25))
        for message in messages:
            log(f"{step.label}: {SHORT_NAMES[type_url]} NACK as expected: {message}")
        log(f"{step.label}: {SHORT_NAMES[type_url]} version {step.version} {expect.upper()}ed")
    if step.visible is not None:
        end = time.monotonic() + deadline.left(25)
        while True:
            _, body = admin_get(envoy.admin_port, "/config_dump?include_eds", timeout=10)
            if step.visible(json.loads(body)):
                log(f"{step.label}: visible in /config_dump")
                break
            if time.monotonic() > end:
                raise TimeoutError(f"{step.label}: never visible in /config_dump")
            time.sleep(0.2)


def wait_memory_settled(envoy, deadline):
    """Waits until /memory `allocated` moves by under 64 KiB between reads one second apart."""
    previous = None
    for _ in range(30):
        _, body = admin_get(envoy.admin_port, "/memory")
        allocated = int(json.loads(body)["allocated"])
        if previous is not None and abs(allocated - previous) < MEMORY_STEADY_BYTES:
            log(f"memory settled at {allocated} bytes allocated")
            return
        previous = allocated
        time.sleep(deadline.left(1.0))
    log("memory did not settle in 30 s; capturing anyway")


def save_captures(envoy, out_dir, extra=()):
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for filename, path in CAPTURES + list(extra):
        status, body = admin_get(envoy.admin_port, path, timeout=20)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
        for stale in (filename, filename + ".gz"):
            if os.path.exists(os.path.join(out_dir, stale)):
                os.remove(os.path.join(out_dir, stale))
        if len(body) > GZIP_OVER:
            filename += ".gz"
            body_on_disk = gzip.compress(body, compresslevel=9, mtime=0)
        else:
            body_on_disk = body
        with open(os.path.join(out_dir, filename), "wb") as f:
            f.write(body_on_disk)
        written.append((filename, len(body), len(body_on_disk)))
    return written


def run(args):
    deadline = Deadline(args.deadline)
    scenario = SCENARIOS[args.scenario]()
    steps = scenario.steps()
    workdir = tempfile.mkdtemp(prefix=f"heft-capture-{args.scenario}-")
    server = XdsServer(log=log if args.verbose else (lambda _message: None))
    envoy = None
    ok = False
    try:
        server.start()
        push_step(server, steps[0])
        admin_port = free_port()
        bootstrap_path = os.path.join(workdir, "bootstrap.json")
        with open(bootstrap_path, "w") as f:
            json.dump(scenario.bootstrap(admin_port, server.port), f, indent=2)
        envoy = Envoy(args.envoy, bootstrap_path, workdir, admin_port)
        envoy.start(deadline)
        wait_step(server, envoy, steps[0], deadline)
        envoy.wait_live(deadline)
        log(f"{steps[0].label}: Envoy is LIVE")
        for step in steps[1:]:
            push_step(server, step)
            wait_step(server, envoy, step, deadline)
        wait_memory_settled(envoy, deadline)
        envoy.check_running()
        for filename, raw, stored in save_captures(envoy, args.out, getattr(scenario, "extra_captures", ())):
            log(f"wrote {os.path.join(args.out, filename)}: {raw} bytes" +
                (f" ({stored} gzipped)" if filename.endswith(".gz") else ""))
        ok = True
    finally:
        if envoy is not None:
            if not ok:
                log(f"Envoy log tail:\n{envoy.log_tail()}")
            envoy.stop()
        server.stop()
        if args.keep_work:
            log(f"kept work directory {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def watchdog(what, seconds):
    """SIGTERM unwinds like Ctrl-C, and after `seconds` an alarm unwinds too: a last resort if
    something blocks outside the run's own timeouts (Envoy and the server stop in `finally`).
    The caller cancels the alarm with `signal.alarm(0)` when done."""

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def expired(_signum, _frame):
        raise TimeoutError(f"{what} watchdog: the run outlived its deadline")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoy", required=True, help="path of the Envoy binary")
    parser.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    parser.add_argument("--out", required=True, help="directory for the captured files")
    parser.add_argument("--deadline", type=float, default=55.0, help="seconds the whole run may take")
    parser.add_argument("--keep-work", action="store_true", help="keep the bootstrap and Envoy log")
    parser.add_argument("--verbose", action="store_true", help="log every xDS response")
    args = parser.parse_args()

    watchdog("capture", int(args.deadline) + 20)
    started = time.monotonic()
    try:
        run(args)
    except (Exception, KeyboardInterrupt) as error:  # report once, with the cause, and fail
        log(f"FAILED: {type(error).__name__}: {error}")
        return 1
    finally:
        signal.alarm(0)
    log(f"{args.scenario}: done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
