#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (every parser of the runtime, see Sources/T5Fuzz/Targets.swift) with
# AddressSanitizer and runs each for SECONDS (default 20), seeded with the real files of Tests/Fixtures and
# Fuzz/seeds. Prints the executions and executions per second of each target; exits non-zero when one crashes,
# traps, trips AddressSanitizer or hangs, after printing its report (the input is saved under
# Fuzz/.build/artifacts/).
#
#   Fuzz/run.sh [SECONDS]              all targets
#   TARGETS="json config" Fuzz/run.sh  some of them
#   JOBS=1 Fuzz/run.sh                 one target at a time (default: as many at once as there are cores)
#   FUZZ_FLAGS="-runs=1000000" Fuzz/run.sh   more libFuzzer flags (they follow, and override, the script's)
#
# New inputs that reach new code are kept in Fuzz/.build/corpus/TARGET (not committed) and seed later runs.
# To reproduce a crash: T5_FUZZ_TARGET=TARGET Fuzz/.build/release/T5Fuzz Fuzz/.build/artifacts/TARGET-crash-...
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
fixtures=../Tests/Fixtures

echo "== building the fuzzers (release, -sanitize=fuzzer,address)"
# lld: the system's gold linker aborts with an internal error on these objects.
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing \
    -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
binary=.build/release/T5Fuzz

# Seeds of each target (files; globs are expanded here) and extra libFuzzer flags.
seeds() {
    case "$1" in
    safetensors) echo $fixtures/safetensors/*.safetensors $fixtures/safetensors/sharded/*.safetensors \
        $fixtures/models/st-t5-*/2_Dense/model.safetensors ;;
    safetensors-index) echo $fixtures/safetensors/sharded/model.safetensors.index.json \
        $fixtures/models/t5-gated-silu-bf16/model.safetensors.index.json ;;
    json) echo $fixtures/models/*/config.json $fixtures/models/*/generation_config.json \
        $fixtures/models/st-t5-*/*.json $fixtures/models/st-t5-*/*/config.json \
        $fixtures/safetensors/sharded/model.safetensors.index.json seeds/trainer-state/* ;;
    config) echo $fixtures/models/*/config.json $fixtures/training/*/config.json ../models/default/config.json ;;
    generation-config) echo $fixtures/models/*/generation_config.json ../models/default/generation_config.json ;;
    spiece | tokenizer) echo seeds/spiece/* $fixtures/spm/spiece.model ;;
    tokenizer-json) echo seeds/tokenizer-json/* ;;
    dataset) echo seeds/dataset/* ;;
    trainer-state) echo seeds/trainer-state/* ;;
    corpus) echo $fixtures/pretrain/corpus/* ;;
    model-card) echo ../models/README.md ../models/default/README.md ../README.md ;;
    *) echo "unknown target $1" >&2; return 1 ;;
    esac
}
flags() {
    case "$1" in
    safetensors) echo -max_len=8192 ;;
    json | config | generation-config | safetensors-index | trainer-state | dataset) echo -dict=json.dict -max_len=4096 ;;
    spiece | tokenizer) echo -max_len=8192 ;;  # the seeds' size; the 245 KB fixture is cut, the small ones are whole
    tokenizer-json) echo -dict=json.dict -max_len=16384 ;;  # every seed whole (Fuzz/make_tokenizer_json_seeds.py)
    corpus) echo -dict=json.dict -max_len=4096 ;;
    model-card) echo -max_len=4096 ;;
    esac
}

all="safetensors safetensors-index json config generation-config spiece tokenizer tokenizer-json dataset trainer-state corpus model-card"
targets="${TARGETS:-$all}"
jobs="${JOBS:-$(nproc)}"
mkdir -p .build/corpus .build/artifacts .build/logs
rm -f .build/logs/*.rc

fuzz() {
    local target="$1" seed="$2"
    local corpus=.build/corpus/$target log=.build/logs/$target.log
    mkdir -p "$corpus" "$seed"
    local file
    for file in $(seeds "$target"); do
        cp "$file" "$seed/$(echo "${file#../}" | tr / _)"  # names from the path: every model has a config.json
    done
    # -timeout: an input taking 10 s is a hang. -rss_limit_mb: the default; a parser that allocates what a
    # header declares fails here.
    # shellcheck disable=SC2046
    T5_FUZZ_TARGET="$target" "$binary" $(flags "$target") -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=".build/artifacts/$target-" ${FUZZ_FLAGS:-} \
        "$corpus" "$seed" >"$log" 2>&1
}

echo "== fuzzing: $targets ($seconds s each, $jobs at a time)"
seedroot=$(mktemp -d)
trap 'rm -rf "$seedroot"' EXIT
running=0
for target in $targets; do
    seeds "$target" >/dev/null
    ( rc=0; fuzz "$target" "$seedroot/$target" || rc=$?; echo $rc >".build/logs/$target.rc" ) &
    running=$((running + 1))
    if ((running >= jobs)); then wait -n || true; running=$((running - 1)); fi
done
wait

failed=0
printf '%-18s %12s %10s %8s  %s\n' target executions exec/s corpus result
for target in $targets; do
    log=.build/logs/$target.log
    rc=$(cat ".build/logs/$target.rc" 2>/dev/null || echo 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    time=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    units=$(find ".build/corpus/$target" -type f | wc -l)
    if [ "$rc" = 0 ]; then result=ok; else result="FAILED (exit $rc)"; failed=1; fi
    printf '%-18s %12s %10s %8s  %s\n' "$target" "${runs:-?}" "${time:-?}" "$units" "$result"
done
for target in $targets; do
    if [ "$(cat ".build/logs/$target.rc" 2>/dev/null || echo 1)" != 0 ]; then
        echo "== $target: Fuzz/.build/logs/$target.log"
        grep -v -E '^(#[0-9]|INFO:|  NEW_FUNC|MS:|stat::)' ".build/logs/$target.log" | tail -60
    fi
done
exit "$failed"
