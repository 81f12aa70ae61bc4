#!/usr/bin/env python3
"""Reads the same generated dump with Heft and with the tools users have today, in one run.

Usage: benches/run.py [--mb 128] [--rounds 3]

Each reader runs as its own process under /usr/bin/time (wall time, peak RSS). Rounds interleave
the readers, so machine noise hits all of them alike; the best round of each is reported, with its
ratio to the serde_json::Value baseline measured in the same run.
"""

import argparse
import os
import platform
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "benches", "out")
REL = os.path.join(ROOT, "target", "release")


def timed(cmd):
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "sh", "-c", cmd + " >/dev/null"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench: failed: {cmd}\n{r.stderr}")
    secs, kib = r.stderr.strip().splitlines()[-1].split()
    return float(secs), int(kib) * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-slow", action="store_true", help="leave out jq and Python")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    dump = os.path.join(OUT, f"dump-{args.mb}mb.json")
    if not os.path.exists(dump):
        subprocess.run([sys.executable, os.path.join(ROOT, "benches", "gen_dump.py"),
                        "--target-mb", str(args.mb), "--out", dump], check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "heft-cli", "-p", "heft-bench"],
                   cwd=ROOT, check=True)
    size = os.path.getsize(dump)
    heft = os.path.join(REL, "heft")
    readers = [
        ("heft summary, file", f"{heft} summary -o json {dump}"),
        ("heft summary, pipe", f"cat {dump} | {heft} summary -o json -"),
        ("serde_json::Value", f"{os.path.join(REL, 'value-reader')} {dump}"),
    ]
    if not args.skip_slow:
        readers += [
            ("jq (count clusters)", f"jq '[.configs[].dynamic_active_clusters // [] | length] | add' {dump}"),
            ("python json.load", f"{sys.executable} -c \"import json,sys; json.load(open(sys.argv[1]))\" {dump}"),
        ]
    best = {}
    for _ in range(args.rounds):
        for name, cmd in readers:
            t, rss = timed(cmd)
            if name not in best or t < best[name][0]:
                best[name] = (t, rss)
    base = best["serde_json::Value"][0]
    print(f"dump: {size / 1e6:.1f} MB ({os.path.basename(dump)}), machine: {platform.machine()}, "
          f"{os.cpu_count()} cores, best of {args.rounds} interleaved rounds\n")
    print(f"| reader | seconds | MB/s | peak RSS (MB) | RSS / file | speed vs serde_json::Value |")
    print(f"|---|---|---|---|---|---|")
    for name, _ in readers:
        t, rss = best[name]
        print(f"| {name} | {t:.2f} | {size / 1e6 / t:.0f} | {rss / 1e6:.0f} | {rss / size:.2f} | {base / t:.2f}x |")


if __name__ == "__main__":
    main()
