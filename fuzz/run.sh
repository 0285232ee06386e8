#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh - run each libFuzzer target named on the command line for $FUZZ_SECONDS seconds (make fuzz).
# Seeds: fuzz/corpus/<target>/ and tests/data/regress/<target>/ (read only); the growing corpus lives in
# $FUZZ_DIR/corpus/<target>/, crashes/timeouts/OOMs in $FUZZ_DIR/crashes/<target>-*, logs in $FUZZ_DIR/<target>.log.
cd "$(dirname "$0")/.." || exit 2
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
mkdir -p "$FUZZ_DIR/crashes"
failed=0
for t in "$@"; do
    bin=$FUZZ_DIR/fuzz_$t
    mkdir -p "$FUZZ_DIR/corpus/$t"
    dirs=("$FUZZ_DIR/corpus/$t")
    for d in "fuzz/corpus/$t" "tests/data/regress/$t"; do [ -d "$d" ] && dirs+=("$d"); done
    # inputs up to 64 KB, or up to the largest seed (whole GGUF models are ~1.5 MB: a shorter limit would cut every seed)
    maxlen=$(find -L "${dirs[@]}" -type f -printf '%s\n' 2>/dev/null | sort -n | tail -n1)
    [ "${maxlen:-0}" -gt 65536 ] || maxlen=65536
    opts=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 -max_len="$maxlen"
          -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/crashes/$t-")
    [ -f "fuzz/$t.dict" ] && opts+=(-dict="fuzz/$t.dict")
    # ASan: no leak is tolerated either; UBSan: stop at the first report not in fuzz/ubsan.supp
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions="$PWD/fuzz/ubsan.supp" \
        "$bin" "${opts[@]}" "${dirs[@]}" >"$FUZZ_DIR/$t.log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$FUZZ_DIR/$t.log")
    cov=$(grep -o 'cov: [0-9]*' "$FUZZ_DIR/$t.log" | tail -n1)
    if [ $rc -eq 0 ]; then
        printf 'fuzz %-12s ok    %8s runs in %ss, %s, corpus %s files\n' "$t" "${runs:-?}" "$FUZZ_SECONDS" "${cov:-cov: ?}" \
            "$(ls "$FUZZ_DIR/corpus/$t" | wc -l)"
    else
        failed=1
        art=$(grep -o "Test unit written to .*" "$FUZZ_DIR/$t.log" | tail -n1 | sed 's/Test unit written to //')
        printf 'fuzz %-12s FAIL  (exit %d) %s\n' "$t" "$rc" "$(grep -m1 -E 'ERROR|SUMMARY|runtime error|deadly' "$FUZZ_DIR/$t.log")"
        printf '      input: %s (copy it to tests/data/regress/%s/ once fixed); log: %s\n' "${art:-?}" "$t" "$FUZZ_DIR/$t.log"
    fi
done
exit $failed
