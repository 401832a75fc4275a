"""Tiny calls right after parallel ones, under each OpenMP wait policy.

After a parallel region, OpenMP's worker threads wait for the next one by
spinning for a while (libgomp: GOMP_SPINCOUNT iterations, 300,000 by default
when OMP_WAIT_POLICY is unset), then sleep.  On a machine with few cores, or
one shared with other work, a spinning worker takes a core from the caller's
next, serial, calls; a sleeping one costs a wake-up at the next parallel call.

For each policy this starts a fresh interpreter (the runtime reads it once,
when it loads) and times, interleaved, per backend:

* ``alone``: a 10-element float32 sigmoid call, in runs of 50 calls;
* ``after``: the same run of 50 right after one 2-thread call on 10**6;
* ``par 1e5`` / ``par 1e6``: 2-thread calls back to back (the worst case for a
  policy that sleeps: every call wakes the workers).

    python benchmarks/bench_wait_policy.py [--policies default,fastact,passive,...]

Times are best (median) over interleaved samples; ``after / alone`` is the
slowdown of the tiny calls.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# name: the environment of the child ("default": the runtime's own; "fastact": what
# fastact sets where the user set neither variable)
POLICIES = {
    "default": {},
    "fastact": {},
    "passive": {"OMP_WAIT_POLICY": "passive"},
    "active": {"OMP_WAIT_POLICY": "active"},
    "spin1k": {"GOMP_SPINCOUNT": "1000"},
    "spin10k": {"GOMP_SPINCOUNT": "10000"},
    "spin100k": {"GOMP_SPINCOUNT": "100000"},
}

CHILD = r"""
import json, statistics, sys, time
import numpy as np
import fastact
from fastact._config import wait_policy

backend, rounds = sys.argv[1], int(sys.argv[2])
fastact.set_backend(backend)
f = fastact.sigmoid
tiny = np.random.default_rng(0).standard_normal(10).astype(np.float32)
big = np.random.default_rng(1).standard_normal(10**6).astype(np.float32)
mid = big[: 10**5]
ot, ob, om = np.empty_like(tiny), np.empty_like(big), np.empty_like(mid)
clock = time.perf_counter
K = 50
fastact.set_num_threads(2)
for _ in range(20):
    f(big, out=ob); f(mid, out=om); f(tiny, out=ot)
samples = {"alone": [], "after": [], "par 1e5": [], "par 1e6": []}
for _ in range(rounds):
    t0 = clock()
    for _ in range(K):
        f(tiny, out=ot)
    samples["alone"].append((clock() - t0) / K)
    f(big, out=ob)
    t0 = clock()
    for _ in range(K):
        f(tiny, out=ot)
    samples["after"].append((clock() - t0) / K)
    t0 = clock()
    for _ in range(10):
        f(mid, out=om)
    samples["par 1e5"].append((clock() - t0) / 10)
    t0 = clock()
    for _ in range(3):
        f(big, out=ob)
    samples["par 1e6"].append((clock() - t0) / 3)
    time.sleep(0.002)  # the workers go back to sleep between rounds under any policy
out = {k: (min(v), statistics.median(v)) for k, v in samples.items()}
out["policy"] = wait_policy()
print(json.dumps(out))
"""


def run(policy: str, backend: str, rounds: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        env.pop(k, None)
    for k, v in POLICIES[policy].items():
        if v:
            env[k] = v
    if policy == "default":
        env["FASTACT_OMP_WAIT"] = "runtime"  # fastact leaves the runtime's default
    done = subprocess.run(
        [sys.executable, "-c", CHILD, backend, str(rounds)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--backends", default="cython,numba")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=2, help="runs of every policy, interleaved")
    args = ap.parse_args()
    policies = args.policies.split(",")
    backends = args.backends.split(",")
    t0 = time.perf_counter()
    got: dict[tuple, list[dict]] = {}
    for _ in range(args.repeat):
        for b in backends:
            for p in policies:
                got.setdefault((b, p), []).append(run(p, b, args.rounds))
    print(
        "sigmoid float32; us per call, best (median) over interleaved samples, "
        f"best run of {args.repeat}"
    )
    cols = ["alone", "after", "par 1e5", "par 1e6"]
    print(f"{'backend':8}{'policy':10}" + "".join(f"{c:>16}" for c in cols) + "  after/alone")
    for (b, p), runs in got.items():
        best = {c: min((r[c] for r in runs), key=lambda t: t[0]) for c in cols}
        cells = "".join(f"{best[c][0] * 1e6:7.2f} ({best[c][1] * 1e6:6.2f})" for c in cols)
        ratio = best["after"][1] / best["alone"][1]
        print(f"{b:8}{p:10}{cells}  {ratio:6.2f}   [{runs[0]['policy']}]")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
