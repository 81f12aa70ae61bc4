#!/usr/bin/env python3
"""Reads the same generated dump with Heft and with the tools users have today, in one run.

Usage: benches/run.py [--mb 128] [--rounds 3] [--protobuf] [--skip-slow]

Each reader runs as its own process under /usr/bin/time (wall time, peak RSS). Rounds interleave
the readers, so machine noise hits all of them alike; the best round of each is reported, with its
ratio to the serde_json::Value baseline measured in the same run.
"""

import argparse
import json
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
    ap.add_argument("--protobuf", action="store_true",
                    help="also read the dump as binary protobuf (converted with .venv/oracle)")
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
    # Resources in the dump, to compare encodings of different sizes (resources/s).
    summary = json.loads(subprocess.run([heft, "summary", "-o", "json", dump], capture_output=True,
                                        check=True).stdout)
    resources = (summary["clusters"]["total"] + summary["listeners"]["total"]
                 + summary["route_configs"]["total"] + summary["endpoint_configs"]
                 + summary["secrets"]["total"])
    readers = [
        ("heft summary, file", f"{heft} summary -o json {dump}", size),
        ("heft cost (read + attribution), file", f"{heft} cost -o json --by service {dump}", size),
        ("heft summary, pipe", f"cat {dump} | {heft} summary -o json -", size),
        ("serde_json::Value", f"{os.path.join(REL, 'value-reader')} {dump}", size),
    ]
    oracle_python = os.path.join(ROOT, ".venv", "oracle", "bin", "python")
    if args.protobuf:
        pb_dir = os.path.join(OUT, f"pb-{args.mb}mb")
        pb = os.path.join(pb_dir, "0", "config_dump.pb")
        if not os.path.exists(pb):
            subprocess.run([oracle_python, os.path.join(ROOT, "tests", "oracle", "to_binary.py"),
                            pb_dir, dump], check=True, stdout=subprocess.DEVNULL)
        readers.insert(2, ("heft summary, protobuf file", f"{heft} summary -o json {pb}",
                           os.path.getsize(pb)))
    if not args.skip_slow:
        readers += [
            ("jq (count clusters)", f"jq '[.configs[].dynamic_active_clusters // [] | length] | add' {dump}",
             size),
            ("python json.load", f"{sys.executable} -c \"import json,sys; json.load(open(sys.argv[1]))\" {dump}",
             size),
        ]
    best = {}
    for _ in range(args.rounds):
        for name, cmd, _ in readers:
            t, rss = timed(cmd)
            if name not in best or t < best[name][0]:
                best[name] = (t, rss)
    base = best["serde_json::Value"][0]
    attribution = best["heft cost (read + attribution), file"][0] / best["heft summary, file"][0]
    print(f"dump: {size / 1e6:.1f} MB of JSON ({os.path.basename(dump)}), {resources} resources; "
          f"machine: {platform.machine()}, {os.cpu_count()} cores; best of {args.rounds} interleaved rounds\n")
    print("| reader | input MB | seconds | MB/s | resources/s | peak RSS (MB) | RSS / input | speed vs serde_json::Value |")
    print("|---|---|---|---|---|---|---|---|")
    for name, _, n in readers:
        t, rss = best[name]
        print(f"| {name} | {n / 1e6:.1f} | {t:.2f} | {n / 1e6 / t:.0f} | {resources / t:,.0f} | {rss / 1e6:.0f} "
              f"| {rss / n:.2f} | {base / t:.2f}x |")
    print(f"\nheft cost / heft summary on the same file (attribution's price): {attribution:.2f}x")


if __name__ == "__main__":
    main()
