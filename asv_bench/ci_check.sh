#!/usr/bin/env bash
# CI check of the asv suite (run by .ci/run after the tests): every benchmark
# must import, pass `asv check` and run once against the installed fastact.
# FASTACT_ASV_CI=1 keeps the arrays small so that this takes a few minutes on
# 2 cores; timings of a --quick run mean nothing and nothing is saved.
set -euo pipefail
cd "$(dirname "$0")"
export FASTACT_ASV_CI="${FASTACT_ASV_CI:-1}"

asv machine --yes >/dev/null
asv check --python=same

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
asv run --python=same --quick --show-stderr --dry-run 2>&1 | tee "$log" || status=$?
# asv exits 2 when a benchmark fails; also refuse a run that reports a failure
# in its tables (a parameter combination that raised anything but
# NotImplementedError) or that ran nothing at all.
if [ "$status" -ne 0 ]; then
    echo "ci_check: asv run exited with status $status" >&2
    exit "$status"
fi
if grep -Eq '(^|[[:space:]])failed([[:space:]]|$)' "$log"; then
    echo "ci_check: some benchmarks failed (see 'failed' above)" >&2
    exit 1
fi
if ! grep -q 'kernels.Kernels.time_call' "$log"; then
    echo "ci_check: the suite did not run (no kernels.Kernels.time_call)" >&2
    exit 1
fi
echo "ci_check: asv suite OK"
