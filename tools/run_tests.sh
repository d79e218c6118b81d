#!/usr/bin/env bash
# `make test`: the contract suite and the rest of the suite side by side, as two
# processes (the machine has two cores; each suite starts its own anvils on free
# ports, and much of the second waits on subprocesses and chains). The rest's output
# streams; the contract suite's is shown when both have ended. Fails if either fails.
# Arguments go to both `ape test` runs (e.g. `-m long`).
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp -t sentinel-contract-tests-XXXXXX.log)
ape test tests/contracts "$@" > "$log" 2>&1 &
contracts_pid=$!
trap 'kill "$contracts_pid" 2>/dev/null' INT TERM

ape test tests --ignore=tests/contracts "$@"
rest=$?
wait "$contracts_pid"
contracts=$?

echo "==================== tests/contracts (ran beside the rest) ===================="
cat "$log"
rm -f "$log"
echo "tests/contracts: exit $contracts; the rest: exit $rest"
[ "$contracts" -eq 0 ] && [ "$rest" -eq 0 ]
