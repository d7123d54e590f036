#!/usr/bin/env bash
# ThreadSanitizer over the test suites that run code on several threads at once: the worker pool
# (ParallelTests), inference and training forced onto two threads (ParallelParityTests, TrainingSpeedTests,
# KernelTests' threaded products), concurrent requests, streams that stop when their consumer leaves, cancelled
# generations (the decode loop's cancellation from another thread), and concurrent tokenizer use. Debug build (TSan's usual setting; a release build takes twice as
# long to compile here) in its own scratch folder, .build-tsan, so the main build is left alone. Exits non-zero
# if a test fails or TSan reports anything that Fuzz/tsan.supp does not suppress.
#
#   Fuzz/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."

filters=(
    'ParallelTests/'
    'ConcurrencyTests/'
    'ParallelParityTests/'
    'DecodingTests/(streaming|concurrent)'
    'InferenceHardeningTests/(aStreamStops|aCancelledGeneration)'
    'DecodeLoopTests/(aCancelledGenerate|cancellingAStream)'
    'TokenizerTests/concurrentEncoding'
    'TrainingSpeedTests/(twoThreadPaths|reusedBuffers|threadedProductOnTwoThreads|linearBackward)'
    'KernelTests/(gemmMatchesNaive|packedWeightsMatchNaive)'
)
args=()
for filter in "${filters[@]}"; do args+=(--filter "$filter"); done

echo "== building the tests with -sanitize=thread (debug, .build-tsan)"
swift build --build-tests --sanitize=thread --scratch-path .build-tsan

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== running ${#filters[@]} groups of concurrent tests under ThreadSanitizer"
rc=0
TSAN_OPTIONS="suppressions=$PWD/Fuzz/tsan.supp halt_on_error=0 exitcode=66 ${TSAN_OPTIONS:-}" \
    swift test --skip-build --sanitize=thread --scratch-path .build-tsan "${args[@]}" >"$log" 2>&1 || rc=$?
grep -E '^(✔|✘) (Suite|Test run)|^✘ Test' "$log" || true
warnings=$(grep -c '^WARNING: ThreadSanitizer' "$log" || true)
if [ "$rc" != 0 ] || [ "$warnings" != 0 ]; then
    echo "== ThreadSanitizer: $warnings report(s), exit $rc"
    grep -v -E '^(◇|✔|↳)' "$log" | tail -200
    exit 1
fi
tests=$(sed -n 's/^✔ Test run with \([0-9]*\) tests.*/\1/p' "$log")
[ -n "$tests" ] && [ "$tests" -gt 0 ] || { echo "== no test ran"; exit 1; }
echo "== ThreadSanitizer: no reports over $tests tests"
