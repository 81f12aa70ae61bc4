#!/usr/bin/env python3
"""Heft against the tools users have today, on the same generated dumps, in one run.

Usage: benches/run.py [--sizes 16,256,1024] [--rounds 5] [--slow-rounds 2] [--modes file,pipe,zstd]
                      [--skip-slow] [--save benches/RESULTS.md]

For each size (MB of pretty-printed JSON) it makes, once, into benches/out/ (ignored by git):
the dump as Envoy prints it (`gen-dump`), its lowerCamelCase form, its binary protobuf form
(official Envoy descriptors from xds-protos, via .venv/oracle), and zstd copies of the JSON and
binary forms. Then every reader runs as its own process under /usr/bin/time, from a file, from a
pipe (`cat FILE |`) and zstd-compressed, rounds interleaved so machine noise hits all alike;
the best round of each is kept. Before each timed run its input file is read once, untimed, so
that every reader starts from the page cache: this virtual machine's kernel pages out files left
idle for a while (DAMON `pageout`), and without this, whichever reader follows a long one pays
for reading part of its input from the disk again. Readers: `heft summary -o json` (read + cost attribution) on JSON,
camelCase JSON and protobuf; the least a binary reader must do (benches/wire_floor.rs); a
serde_json::Value reader (benches/value_reader.rs); jq counting clusters; Python's json.load. Throughput is over the decompressed bytes each reader parses.
Peak RSS is the largest process of the pipeline; from a file it counts the mapped pages Heft
reads. jq is installed from Debian if missing.
"""

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "benches", "out")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
REL = os.path.join(TARGET, "release")
ORACLE = os.path.join(ROOT, ".venv", "oracle", "bin", "python")


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def timed(cmd):
    """Wall seconds, CPU seconds (user + sys) and peak RSS bytes of a shell pipeline."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "sh", "-c", cmd + " >/dev/null"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench: failed: {cmd}\n{r.stderr[-2000:]}")
    wall, user, system, kib = r.stderr.strip().splitlines()[-1].split()
    return float(wall), float(user) + float(system), int(kib) * 1024


def warm(path):
    """Reads a file once, so that a timed run finds it in the page cache."""
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass


def ensure_jq():
    if shutil.which("jq"):
        return True
    print("bench: jq is missing; installing it from Debian", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    try:
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "jq"], check=True,
                       stdout=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, FileNotFoundError):
        print("bench: could not install jq; its rows are left out", file=sys.stderr)
        return False
    return shutil.which("jq") is not None


def inputs(mb, gen):
    """The files of one size, made once."""
    base = os.path.join(OUT, f"dump-{mb}mb")
    files = {"json": base + ".json", "camel": base + "-camel.json", "pb": base + ".pb"}
    desc = os.path.join(OUT, "envoy-descriptors.pb")
    if not os.path.exists(desc):
        sh(f"{ORACLE} {ROOT}/benches/descriptors.py {desc}")
    for form, path in [("json", files["json"]), ("camel", files["camel"]), ("binary", files["pb"])]:
        if not os.path.exists(path):
            sh(f"{gen} --target-mb {mb} --form {form} --descriptors {desc} --out {path}.tmp")
            os.rename(path + ".tmp", path)
    for key in ("json", "pb"):
        z = files[key] + ".zst"
        if not os.path.exists(z):
            sh(f"zstd -q -3 -T0 -f {files[key]} -o {z}.tmp")
            os.rename(z + ".tmp", z)
        files[key + ".zst"] = z
    return files


def readers(files, modes, slow, jq):
    """(name, mode, shell command, bytes parsed, stored bytes) for one size."""
    heft = os.path.join(REL, "heft")
    value = os.path.join(REL, "value-reader")
    floor = os.path.join(REL, "wire-floor")
    j, c, pb = files["json"], files["camel"], files["pb"]
    jz, pbz = files["json.zst"], files["pb.zst"]
    size = os.path.getsize
    rows = []

    def add(name, mode, cmd, parsed, path):
        """`path` is the file the command reads (its size is the stored bytes)."""
        if mode in modes:
            rows.append((name, mode, cmd, parsed, size(path), path))

    add("heft summary, JSON", "file", f"{heft} summary -o json {j}", size(j), j)
    add("heft summary, JSON", "pipe", f"cat {j} | {heft} summary -o json -", size(j), j)
    add("heft summary, JSON", "zstd", f"{heft} summary -o json {jz}", size(j), jz)
    add("heft summary, camelCase JSON", "file", f"{heft} summary -o json {c}", size(c), c)
    add("heft summary, protobuf", "file", f"{heft} summary -o json {pb}", size(pb), pb)
    add("heft summary, protobuf", "pipe", f"cat {pb} | {heft} summary -o json -", size(pb), pb)
    add("heft summary, protobuf", "zstd", f"{heft} summary -o json {pbz}", size(pb), pbz)
    add("binary wire walk, no model (floor)", "file", f"{floor} {pb}", size(pb), pb)
    add("serde_json::Value", "file", f"{value} {j}", size(j), j)
    add("serde_json::Value", "pipe", f"cat {j} | {value} -", size(j), j)
    add("serde_json::Value", "zstd", f"zstd -dc {jz} | {value} -", size(j), jz)
    if slow:
        jq_prog = "'[.configs[].dynamic_active_clusters // [] | length] | add'"
        py = f"{sys.executable} -c \"import json,sys; json.load(open(sys.argv[1]) if sys.argv[1] != '-' else sys.stdin)\""
        if jq:
            add("jq (count clusters)", "file", f"jq {jq_prog} {j}", size(j), j)
            add("jq (count clusters)", "pipe", f"cat {j} | jq {jq_prog}", size(j), j)
            add("jq (count clusters)", "zstd", f"zstd -dc {jz} | jq {jq_prog}", size(j), jz)
        add("python json.load", "file", f"{py} {j}", size(j), j)
        add("python json.load", "pipe", f"cat {j} | {py} -", size(j), j)
        add("python json.load", "zstd", f"zstd -dc {jz} | {py} -", size(j), jz)
    return rows


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (f"{platform.machine()}, {model}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
            f"Linux {platform.release()}; load average {load:.1f} at the start")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="16,256,1024", help="MB of JSON per dump, comma-separated")
    ap.add_argument("--rounds", type=int, default=5, help="rounds for Heft and serde_json::Value")
    ap.add_argument("--slow-rounds", type=int, default=2, help="rounds for jq and Python")
    ap.add_argument("--modes", default="file,pipe,zstd")
    ap.add_argument("--skip-slow", action="store_true", help="leave out jq and Python")
    ap.add_argument("--save", help="also write the report (markdown) to this file")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    sh("cargo build --release -q -p heft-cli -p heft-bench", cwd=ROOT)
    gen = os.path.join(REL, "gen-dump")
    modes = set(args.modes.split(","))
    jq = (not args.skip_slow) and ensure_jq()
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    host = machine()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    report = [f"Run {started}, commit {commit}, on {host}.", "",
              "Best of the rounds (Heft and serde_json::Value: "
              f"{args.rounds}, jq and Python: {args.slow_rounds}), interleaved, each run's input "
              "file read once untimed before it (page cache warm). Seconds and CPU are the best "
              "round's, and rounds the fastest and slowest; MB/s is over the decompressed bytes "
              "parsed; CPU is user + system seconds of the whole pipeline.", ""]
    header = ("| reader | input | parsed MB | stored MB | seconds | rounds s | CPU s | MB/s "
              "| peak RSS MB | RSS / parsed | vs serde_json::Value | vs jq |")
    for mb in [int(s) for s in args.sizes.split(",")]:
        files = inputs(mb, gen)
        rows = readers(files, modes, not args.skip_slow, jq)
        best, walls = {}, {}
        for r in range(max(args.rounds, args.slow_rounds)):
            for name, mode, cmd, _, _, path in rows:
                slow = name.startswith(("jq", "python"))
                if r >= (args.slow_rounds if slow else args.rounds):
                    continue
                warm(path)
                t = timed(cmd)
                key = (name, mode)
                walls.setdefault(key, []).append(t[0])
                if key not in best or t[0] < best[key][0]:
                    best[key] = t
                print(f"  {mb} MB {name} ({mode}): {t[0]:.2f} s, {t[2] / 1e6:.0f} MB RSS",
                      file=sys.stderr)
        base = {m: best.get(("serde_json::Value", m)) for m in modes}
        jqt = {m: best.get(("jq (count clusters)", m)) for m in modes}
        report += [f"### {mb} MB", "", header, "|" + "---|" * 12]
        for name, mode, _, parsed, stored, _ in rows:
            wall, cpu, rss = best[(name, mode)]
            spread = walls[(name, mode)]
            rounds = f"{min(spread):.2f}-{max(spread):.2f}" if len(spread) > 1 else ""
            # /usr/bin/time counts hundredths of a second: a faster run has no ratio.
            timed_ok = wall > 0
            vs = f"{base[mode][0] / wall:.1f}x" if base.get(mode) and timed_ok else ""
            vj = f"{jqt[mode][0] / wall:.0f}x" if jqt.get(mode) and timed_ok else ""
            secs = f"{wall:.2f}" if timed_ok else "< 0.01"
            rate = f"{parsed / 1e6 / wall:.0f}" if timed_ok else ""
            report.append(f"| {name} | {mode} | {parsed / 1e6:.1f} | {stored / 1e6:.1f} "
                          f"| {secs} | {rounds} | {cpu:.2f} | {rate} | {rss / 1e6:.0f} "
                          f"| {rss / parsed:.2f} | {vs} | {vj} |")
        report.append("")
    text = "\n".join(report)
    print(text)
    if args.save:
        with open(args.save, "w") as f:
            f.write("# Benchmark results\n\nMade by `benches/run.py` (see docs/benchmarks.md).\n\n" + text + "\n")


if __name__ == "__main__":
    main()
