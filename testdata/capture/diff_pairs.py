"""Real dumps of one mesh before and after known changes, with their measured heap, for `heft diff`.

Usage (with the oracle virtualenv made by scripts/setup.sh):

    .venv/oracle/bin/python testdata/capture/diff_pairs.py --envoy "$(scripts/envoy-path)" --out DIR

Serves a real Envoy the `before` mesh (`mesh.py`, istio-agent's bootstrap) and, each to a fresh
Envoy, the same mesh after one known change: services added, services removed, a route added per
service, circuit breakers turned off. Each is measured as `calibrate.py` measures a point
(`DIR/<id>/config_dump.json.gz`, `point.json` with `allocated`). `DIR/expected.json` says, from the
generated resources themselves, which clusters and route configurations each change adds and
removes, and which clusters it changes.
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of testdata/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import calibrate  # noqa: E402
import mesh as meshes  # noqa: E402

BEFORE = meshes.Mesh(services=120, namespaces=6, ports=((8080, "http"),), endpoints=2,
                     seed=700, **meshes.ISTIO_AGENT)
CHANGES = {
    "services-added": BEFORE.but(services=150),
    "services-removed": BEFORE.but(services=90),
    "routes-added": BEFORE.but(routes=2),
    "circuit-breakers-off": BEFORE.but(circuit_breakers=False),
}


def names(mesh, key):
    return {r["name"]: r for r in meshes.resources(mesh)[key]}


def expected(before, after):
    out = {}
    for kind, key in (("cluster", "clusters"), ("route_config", "routes")):
        a, b = names(before, key), names(after, key)
        out[kind] = {"added": sorted(set(b) - set(a)), "removed": sorted(set(a) - set(b)),
                     "changed": sorted(n for n in set(a) & set(b) if a[n] != b[n])}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    points = {"before": BEFORE, **CHANGES}
    # expected.json first: a generator error shows before any Envoy starts.
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump({pid: expected(BEFORE, m) for pid, m in CHANGES.items()}, f, indent=1, sort_keys=True)
    jobs = [(args.envoy, "diff", pid, m, args.out, 300.0) for pid, m in points.items()]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        for future in [pool.submit(calibrate._measure_job, job) for job in jobs]:
            future.result()


if __name__ == "__main__":
    main()
