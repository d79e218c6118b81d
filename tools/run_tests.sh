#!/usr/bin/env bash
# `make test`: the suite as four processes side by side: the contract suite, the
# end-to-end tests (tests/e2e: `ape run` commands as subprocesses, mostly waiting on
# chains and confirmations), the fault scenarios (tests/faults: keeper processes killed
# and restarted, mostly waiting too) and the rest. Each starts its own anvils, servers
# and processes on free ports. On two cores the machine stays about half busy with one
# process (a fresh-clone run: 32 min wall for 33 min of CPU), so they fit beside each
# other. The rest's output streams; the others are shown when all have ended.
# Fails if any fails. Arguments go to every `ape test` run (e.g. `-m long`).
set -uo pipefail
cd "$(dirname "$0")/.."

contracts_log=$(mktemp -t sentinel-contract-tests-XXXXXX.log)
e2e_log=$(mktemp -t sentinel-e2e-tests-XXXXXX.log)
faults_log=$(mktemp -t sentinel-fault-tests-XXXXXX.log)
ape test tests/contracts "$@" > "$contracts_log" 2>&1 &
contracts_pid=$!
ape test tests/e2e --durations=10 "$@" > "$e2e_log" 2>&1 &
e2e_pid=$!
ape test tests/faults --durations=10 "$@" > "$faults_log" 2>&1 &
faults_pid=$!
trap 'kill "$contracts_pid" "$e2e_pid" "$faults_pid" 2>/dev/null' INT TERM

ape test tests --ignore=tests/contracts --ignore=tests/e2e --ignore=tests/faults --durations=10 "$@"
rest=$?
wait "$faults_pid"
faults=$?
wait "$e2e_pid"
e2e=$?
wait "$contracts_pid"
contracts=$?

echo "==================== tests/faults (ran beside the rest) ===================="
cat "$faults_log"
echo "==================== tests/e2e (ran beside the rest) ===================="
cat "$e2e_log"
echo "==================== tests/contracts (ran beside the rest) ===================="
cat "$contracts_log"
rm -f "$contracts_log" "$e2e_log" "$faults_log"
echo "tests/contracts: exit $contracts; tests/e2e: exit $e2e; tests/faults: exit $faults; the rest: exit $rest"
[ "$contracts" -eq 0 ] && [ "$e2e" -eq 0 ] && [ "$faults" -eq 0 ] && [ "$rest" -eq 0 ]
