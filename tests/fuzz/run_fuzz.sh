#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs every one for SECONDS seconds.
#
#   run_fuzz.sh SOURCE_DIR BUILD_DIR SECONDS [--skip-without-clang]
#
# `make fuzz SECONDS=N` calls it with BUILD_DIR=build-fuzz; the CTest fuzz_smoke
# calls it with 3 s and --skip-without-clang (exit 77 = skipped when clang with
# libFuzzer is missing). Prints one line per target,
#   fuzz: NAME runs=N seconds=S result=ok|CRASH|ERROR
# keeps each target's corpus in BUILD_DIR/fuzz/corpus/NAME (it grows from run to
# run), its log in BUILD_DIR/fuzz/logs/NAME.log and any crashing input in
# BUILD_DIR/fuzz/artifacts/, and exits 1 if any target crashed.
set -u
src=${1:?source dir}
build=${2:?build dir}
seconds=${3:?seconds}
skip=${4:-}

cxx=${FUZZ_CXX:-clang++}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  >"$probe/p.cpp"
if ! command -v "$cxx" >/dev/null || ! "$cxx" -fsanitize=fuzzer "$probe/p.cpp" -o "$probe/p" 2>/dev/null; then
  echo "fuzz: no $cxx with libFuzzer (apt-get install clang)"
  [ "$skip" = "--skip-without-clang" ] && exit 77
  exit 1
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
jobs=${JOBS:-$(nproc)}
if ! cmake -S "$src" -B "$build" -DTOB_FUZZ=ON -DCMAKE_CXX_COMPILER="$cxx" \
     -DCMAKE_BUILD_TYPE=Debug "${launcher[@]}" >"$probe/cmake.log" 2>&1; then
  cat "$probe/cmake.log"; exit 1
fi
if ! cmake --build "$build" --target tob_fuzz -j "$jobs" >"$probe/build.log" 2>&1; then
  tail -40 "$probe/build.log"; exit 1
fi

out=$build/fuzz
mkdir -p "$out/corpus" "$out/logs" "$out/artifacts"
"$out/tob_fuzz_seed_corpus" "$out/corpus" || exit 1
failed=0
for bin in "$out"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  mkdir -p "$out/corpus/$name"
  log=$out/logs/$name.log
  extra=()
  # RocksDB keeps allocations across inputs: leak checks would scan the heap after
  # every input (90 % of the time); the target's own data is freed per input.
  [ "$name" = fuzz_storage_records ] && extra=(-detect_leaks=0)
  "$bin" "${extra[@]}" -max_total_time="$seconds" -max_len=8192 -dict="$src/tests/fuzz/msgpack.dict" \
    -error_exitcode=3 -timeout_exitcode=4 -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$name-" "$out/corpus/$name" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  case $rc in
    0) result=ok ;;
    3|4) result=CRASH; failed=1 ;;
    *) result="ERROR($rc)"; failed=1 ;;
  esac
  echo "fuzz: $name runs=${runs:-?} seconds=${secs:-$seconds} result=$result"
  if [ "$result" != ok ]; then
    grep -m5 -E "ERROR|finding|SUMMARY|Test unit written" "$log" | sed 's/^/  /'
  fi
done
exit $failed
