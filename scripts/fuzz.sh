#!/usr/bin/env bash
# Builds and runs the fuzz targets of fuzz/ (cargo-fuzz, libFuzzer), one after the other, and
# prints for each its executions, coverage, corpus size and crashes.
#
#   scripts/fuzz.sh [--seconds N] [target...]   every target (or those named) for N s (600)
#   scripts/fuzz.sh --ci                        every target for 45 s: a smoke run for CI
#
# Targets: stomp_decoder (the STOMP frame decoder and encoder), connector_uri (connector URIs,
# destination filters, destinations), admin_json (the admin API's JSON bodies, heart-beat
# header values). Inputs found to reach new code are kept in fuzz/corpus/<target>/ and read
# again by the next run, with the committed seeds of fuzz/seeds/<target>/; crashes are written
# to fuzz/artifacts/<target>/ with the run's log (run.log). Neither is committed.
#
# Exits non-zero when a target crashes (a panic, a failed check, a timeout of one input, or
# memory over the limit), after printing how to reproduce it.
#
# Toolchain: cargo-fuzz instruments the build with compiler options that only a nightly rustc
# accepts (-Zsanitizer, and cargo-fuzz's own checks for a nightly). Only the stable toolchain
# is available here, so RUSTC_BOOTSTRAP=1 lets stable rustc accept them; it is set for the
# fuzz builds only, never for the workspace's. Stable rustc ships the AddressSanitizer runtime,
# so the targets build with it (FUZZ_SANITIZER=address, the default); FUZZ_SANITIZER=none
# builds without a sanitizer, which is faster and enough for the safe Rust under test (panics
# and overflow checks are what catch its bugs). cargo-fuzz is installed with
# `cargo install cargo-fuzz --locked` when missing (about a minute on a fresh machine).
#
# Environment: CARGO_TARGET_DIR is honoured (the fuzz build goes to its
# x86_64-unknown-linux-gnu/ subfolder); FUZZ_RSS_MB bounds each run's memory (2048 MB).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ALL_TARGETS=(stomp_decoder connector_uri admin_json)
seconds=600
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --ci)
            seconds=45
            shift
            ;;
        --seconds)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]] || {
                echo "fuzz.sh: --seconds needs a whole number of seconds above 0" >&2
                exit 2
            }
            seconds="$2"
            shift 2
            ;;
        -h | --help)
            sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "fuzz.sh: unknown option $1 (see --help)" >&2
            exit 2
            ;;
        *)
            if [[ ! " ${ALL_TARGETS[*]} " =~ " $1 " ]]; then
                echo "fuzz.sh: unknown target $1 (known: ${ALL_TARGETS[*]})" >&2
                exit 2
            fi
            targets+=("$1")
            shift
            ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")

sanitizer="${FUZZ_SANITIZER:-address}"
rss_mb="${FUZZ_RSS_MB:-2048}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    # Built in a folder of its own, not in the project's target folder.
    env -u CARGO_TARGET_DIR cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# The same options for the build and the runs, so that a run does not rebuild.
build_opts=(--sanitizer "$sanitizer" --debug-assertions)

echo "fuzz.sh: building ${targets[*]} (sanitizer: $sanitizer)" >&2
if [[ ${#targets[@]} -eq ${#ALL_TARGETS[@]} ]]; then
    cargo fuzz build "${build_opts[@]}"
else
    for target in "${targets[@]}"; do
        cargo fuzz build "${build_opts[@]}" "$target"
    done
fi

failed=0
summary=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    log="$artifacts/run.log"
    fuzz_args=(
        -max_total_time="$seconds"
        -rss_limit_mb="$rss_mb"
        -malloc_limit_mb="$rss_mb"
        -timeout=10
        -max_len=4096
        -print_final_stats=1
    )
    if [[ -f "fuzz/dicts/$target.dict" ]]; then
        fuzz_args+=(-dict="fuzz/dicts/$target.dict")
    fi
    echo "fuzz.sh: running $target for ${seconds}s (log: $log)" >&2
    status=0
    # New inputs go to the first folder (the corpus); the seeds are only read. cargo-fuzz
    # points libFuzzer's artifacts at fuzz/artifacts/<target>/.
    cargo fuzz run "${build_opts[@]}" "$target" "$corpus" "fuzz/seeds/$target" -- \
        "${fuzz_args[@]}" >"$log" 2>&1 || status=$?

    status_line=$(grep -a -E '^#[0-9]+' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    # A crash stops the run before the final statistics: the last status line counts.
    [[ -n "$execs" ]] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$status_line")
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status_line")
    features=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status_line")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$status_line")
    corpus_files=$(find "$corpus" "fuzz/seeds/$target" -type f | wc -l)
    reproducers=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | grep -v slow-unit || true)
    crashes=$(grep -c . <<<"$reproducers" || true)
    line=$(printf '%-14s %10s execs  cov %5s  ft %6s  corpus %-11s files %5s  crashes %s' \
        "$target" "${execs:-?}" "${cov:-?}" "${features:-?}" "${corp:-?}" "$corpus_files" "$crashes")
    summary+=("$line")
    if [[ $status -ne 0 || $crashes -gt 0 ]]; then
        failed=1
        echo "fuzz.sh: $target FAILED (exit $status); the end of its log:" >&2
        grep -a -v -E '^#[0-9]+' "$log" | tail -n 40 >&2
        while read -r path; do
            [[ -n "$path" ]] || continue
            echo "fuzz.sh: reproducer: $path" >&2
            echo "fuzz.sh: replay it with: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer --debug-assertions $target $path" >&2
        done <<<"$reproducers"
    fi
done

echo
echo "fuzz.sh: ${seconds}s per target; cov: code edges reached, ft: libFuzzer features, corpus: inputs kept/their size, files: corpus and seed files"
printf '%s\n' "${summary[@]}"
exit "$failed"
