#!/usr/bin/env bash
# Quick start, command 2 (and what CI runs): installs what is missing, builds with warnings
# as errors, and runs every test:
#   1. unit + integration tests (ctest)                       build/release
#   2. the same tests under AddressSanitizer + UBSan           build/asan
#   3. each libFuzzer target for a short run, seeded from the corpus   build/fuzz
#   4. the Debian package: build, lintian, install, run behind Postfix, purge   build/pkg
#      (tests/packaging/run.sh; needs root, as CI runs)
# The real-world corpus is read from ../shared/corpus when present (CI has it; a user's clone
# skips those tests with a message). Set MAILREPORT_FUZZ_SECONDS (default 10) per target.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh --test
# The browser test's playwright-core (tests/browser/package-lock.json; it uses Debian's
# Chromium, nothing else is downloaded).
if command -v npm >/dev/null; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund
fi
jobs=$(nproc)
summary=()
passed=0
failed=0

run_ctest() {  # name build-dir extra-ctest-args...
  local name=$1 dir=$2
  shift 2
  local log="$dir/ctest.log" rc=0
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 900 "$@" 2>&1 | tee "$log" || rc=$?
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 || true)
  if [[ -n "$line" ]]; then
    local f t
    f=$(sed -E 's/.*passed, ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    t=$(sed -E 's/.*passed, ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    passed=$((passed + t - f))
    failed=$((failed + f))
  fi
  summary+=("$name: ${line:-no result}")
  return $rc
}

echo "== 1/4 build and test (RelWithDebInfo, -Werror)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILREPORT_WERROR=ON >/dev/null
cmake --build build/release -j "$jobs"
run_ctest release build/release

echo "== 2/4 build and test under ASan+UBSan"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMAILREPORT_WERROR=ON \
  -DMAILREPORT_SANITIZE=ON -DMAILREPORT_BENCH=OFF >/dev/null
cmake --build build/asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest asan build/asan -LE slow

echo "== 3/4 fuzz targets (clang, libFuzzer)"
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMAILREPORT_FUZZ=ON >/dev/null
cmake --build build/fuzz -j "$jobs"
bash tests/fuzz/run-all.sh build/fuzz "${MAILREPORT_FUZZ_SECONDS:-10}"
fuzz_count=$(find build/fuzz/tests/fuzz -maxdepth 1 -name 'fuzz-*' -type f -executable | wc -l)
passed=$((passed + fuzz_count))
summary+=("fuzz: $fuzz_count targets ran without a crash")

echo "== 4/4 Debian package (tests/packaging/run.sh)"
if [[ $(id -u) -ne 0 ]]; then
  summary+=("package: skipped (installs the package: run as root)")
else
  pkg_start=$SECONDS
  if bash tests/packaging/run.sh build/pkg; then
    passed=$((passed + 1))
    summary+=("package: passed in $((SECONDS - pkg_start))s (build, lintian, install, Postfix loop, purge, Sendmail m4)")
  else
    failed=$((failed + 1))
    summary+=("package: FAILED after $((SECONDS - pkg_start))s (see the output of step 4)")
  fi
fi

echo
printf '%s\n' "${summary[@]}"
echo "mailreport: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
