#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run_tests.sh - runs every C test binary given as arguments and every tests/cli_*.sh script; counts "ok"/"not ok"
# lines and prints "N passed, N failed". A test program that crashes or exits non-zero without reporting a failure
# counts as one failure.
cd "$(dirname "$0")/.." || exit 2
passed=0
failed=0
run_one() {
    local name="$1"; shift
    local out rc
    out=$(timeout 900 "$@" 2>&1)
    rc=$?
    local p f
    p=$(printf '%s\n' "$out" | grep -c '^ok ')
    f=$(printf '%s\n' "$out" | grep -c '^not ok ')
    printf '%s\n' "$out" | grep -E '^(not ok|#)' | sed "s|^|[$name] |"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "[$name] not ok - exited with status $rc"
        printf '%s\n' "$out" | tail -n 5 | sed "s|^|[$name]   |"
        f=1
    fi
    echo "$name: $p passed, $f failed"
    passed=$((passed + p))
    failed=$((failed + f))
}
for bin in "$@"; do
    run_one "$(basename "$bin")" "$bin"
done
for sh in tests/cli_*.sh; do
    [ -e "$sh" ] || continue
    run_one "$(basename "$sh")" bash "$sh"
done
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
