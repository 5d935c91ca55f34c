#!/usr/bin/env bash
# tests/fuzz/run.sh - one fuzz test, as meson test runs it (tests/fuzz/meson.build).
#
#   run.sh fuzz EXE NAME ARTIFACTS     fuzz for ZB_FUZZ_SECONDS (default 30; 0 skips)
#                                      from a copy of corpus/NAME, with NAME.dict
#                                      when it exists; a crash is saved in ARTIFACTS/
#   run.sh regress EXE NAME            run every input of regressions/NAME and
#                                      corpus/NAME once, without fuzzing
#
# Runs in tests/fuzz (meson's workdir). Exit 0 when nothing crashed, 77 (meson:
# skipped) when there was nothing to do, else 1 with the crash report.
# While fuzzing (not when replaying), the findings listed in known-findings
# are tolerated: reported and not fixed yet, their regression inputs keep
# failing the regress test until they are fixed.
# libFuzzer's own output goes to ARTIFACTS/../NAME.log (it is long); this
# prints a summary line first, "TEST: ..." (scripts/test shows it for a failed
# test), and on failure the report.
set -uo pipefail

mode="$1" exe="$2" name="$3"
# Every sanitizer report aborts (so libFuzzer saves the input); options
# already in the environment come last and win.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# The report of a failed run: from the first error line to the sanitizer's
# or libFuzzer's SUMMARY, then where the input was saved.
report() {
    local log="$1"
    awk '/^==[0-9]+==|fuzz invariant failed|runtime error:|^ALARM/ { on = 1 }
         on && !done { print; if (/^SUMMARY:/ || ++n >= 60) done = 1 }
         /Test unit written/ { print }' "$log"
}

case "$mode" in
fuzz)
    artifacts="$4"
    seconds="${ZB_FUZZ_SECONDS:-30}"
    if [ "$seconds" = 0 ]; then
        echo "$name: ZB_FUZZ_SECONDS=0: not fuzzed"
        exit 77
    fi
    mkdir -p "$artifacts" || exit 1
    log="$(dirname "$artifacts")/$name.log"
    work="$(mktemp -d "${TMPDIR:-/tmp}/zb-$name.XXXXXX")" || exit 1
    trap 'rm -rf "$work"' EXIT
    mkdir "$work/corpus"
    if [ -d "corpus/$name" ]; then
        cp -r "corpus/$name/." "$work/corpus/" || exit 1
    fi
    dict=()
    [ -f "$name.dict" ] && dict=("-dict=$name.dict")
    if [ -f known-findings ]; then
        sed -n 's/^ubsan  *\([^ #]*\).*/\1/p' known-findings >"$work/ubsan.supp"
        export UBSAN_OPTIONS="$UBSAN_OPTIONS:suppressions=$work/ubsan.supp"
        ZB_FUZZ_KNOWN="$(sed -n 's/^invariant  *\([^ #]*\).*/\1/p' known-findings | tr '\n' ' ')"
        export ZB_FUZZ_KNOWN
    fi
    # -timeout: one input taking this long is a hang (saved as timeout-*);
    # the outer timeout only guards against libFuzzer itself not stopping.
    timeout -k 10 $((seconds + 120)) "$exe" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -timeout=25 -error_exitcode=1 -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" \
        "$work/corpus" >"$log" 2>&1
    rc=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
    if [ "$rc" = 0 ]; then
        echo "$name: ${runs:-?} inputs in ${seconds} s (${rate:-?} exec/s, ${cov:-cov: ?}), no crash; log $log"
        exit 0
    fi
    echo "$name: FAILED (exit $rc) after ${runs:-?} inputs; log $log"
    report "$log"
    crash="$(ls -t "$artifacts" 2>/dev/null | head -1)"
    if [ -n "$crash" ]; then
        echo "input saved as $artifacts/$crash; replay it with: $exe $artifacts/$crash"
        echo "once fixed, keep it as tests/fuzz/regressions/$name/<what-it-found>"
    fi
    exit 1
    ;;
regress)
    inputs=()
    for dir in "regressions/$name" "corpus/$name"; do
        [ -d "$dir" ] || continue
        for file in "$dir"/*; do
            [ -f "$file" ] && inputs+=("$file")
        done
    done
    if [ ${#inputs[@]} = 0 ]; then
        echo "${name}_regressions: no regression or corpus inputs"
        exit 77
    fi
    # One process per input, so that every failing input is named
    failed=()
    reports="$(mktemp)"
    for file in "${inputs[@]}"; do
        out="$(mktemp)"
        timeout -k 10 300 "$exe" -rss_limit_mb=2048 -timeout=25 -error_exitcode=1 "$file" >"$out" 2>&1
        rc=$?
        if [ "$rc" != 0 ]; then
            failed+=("$file")
            { echo "--- $file (exit $rc)"; report "$out"; } >>"$reports"
        fi
        rm -f "$out"
    done
    if [ ${#failed[@]} = 0 ]; then
        echo "${name}_regressions: ${#inputs[@]} inputs (regressions and seeds) replayed, no crash"
        rm -f "$reports"
        exit 0
    fi
    echo "${name}_regressions: FAILED on ${#failed[@]} of ${#inputs[@]} inputs: ${failed[*]}"
    cat "$reports"
    rm -f "$reports"
    exit 1
    ;;
*)
    echo "usage: run.sh fuzz EXE NAME ARTIFACTS | run.sh regress EXE NAME" >&2
    exit 2
    ;;
esac
