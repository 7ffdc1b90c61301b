#!/usr/bin/env bash
# Coverage-guided fuzzing of sessio (cargo-fuzz / libFuzzer) for a bounded time, on the
# stable toolchain.
#
#   bash fuzz/run.sh SECONDS [--record] [TARGET...]
#
# Builds every target (or those named), runs each for SECONDS, prints a table of total
# executions and crashes, and exits non-zero if any target crashed (the crash input's path
# is printed; reproduce with `cargo fuzz run TARGET PATH` in fuzz/, RUSTC_BOOTSTRAP=1).
# --record appends the table to fuzz/RESULTS.md (for runs by hand, not CI).
#
# Stable rustc: cargo-fuzz passes nightly-only flags (-Zsanitizer=address,
# -Cpasses=sancov-module...); RUSTC_BOOTSTRAP=1 makes stable rustc accept them. The
# AddressSanitizer runtime ships with the stable x86_64 Linux std, so ASan is the default;
# if building with it fails, the run falls back to `--sanitizer none` (coverage guidance
# and every assertion still work). SESSIO_FUZZ_SANITIZER=none forces that.
set -euo pipefail
cd "$(dirname "$0")"

usage() { echo "usage: bash fuzz/run.sh SECONDS [--record] [TARGET...]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
secs=$1
shift
record=0
targets=()
for arg in "$@"; do
  case $arg in
    --record) record=1 ;;
    -*) usage ;;
    *) targets+=("$arg") ;;
  esac
done

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if ! command -v cargo-fuzz >/dev/null 2>&1 && [[ ! -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo-fuzz ]]; then
  echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cargo fuzz list)
fi

build_start=$SECONDS
sanitizer=${SESSIO_FUZZ_SANITIZER:-address}
echo "fuzz: building ${#targets[@]} targets (sanitizer: $sanitizer)"
if ! cargo fuzz build --sanitizer "$sanitizer" >.build.log 2>&1; then
  if [[ $sanitizer == none ]]; then
    cat .build.log >&2
    echo "fuzz: build failed" >&2
    exit 1
  fi
  tail -n 20 .build.log >&2
  echo "fuzz: building with --sanitizer $sanitizer failed; falling back to --sanitizer none" >&2
  sanitizer=none
  if ! cargo fuzz build --sanitizer none >.build.log 2>&1; then
    cat .build.log >&2
    echo "fuzz: build failed" >&2
    exit 1
  fi
fi
rm -f .build.log
build_secs=$((SECONDS - build_start))
echo "fuzz: built in ${build_secs}s"

mkdir -p .work
rows=()
crashes=()
total_execs=0
for t in "${targets[@]}"; do
  # Seeds and regression inputs are read only; new inputs go to the working corpus.
  mkdir -p ".work/$t" "corpus/$t"
  dirs=(".work/$t" "corpus/$t")
  [[ -d regressions/$t ]] && dirs+=("regressions/$t")
  log=".work/$t.log"
  echo "fuzz: $t for ${secs}s"
  rc=0
  cargo fuzz run --sanitizer "$sanitizer" "$t" "${dirs[@]}" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n1 | grep -o '[0-9]*$' || true)
  if [[ -z $execs ]]; then
    # No final stats (killed): take the last progress line, "#N ...".
    execs=$(grep -o '^#[0-9]*' "$log" | tail -n1 | tr -d '#' || true)
  fi
  execs=${execs:-0}
  total_execs=$((total_execs + execs))
  corpus_n=$(find ".work/$t" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    rows+=("$(printf '| %-18s | %12s | %7s | %s |' "$t" "$execs" "$corpus_n" "none")")
  else
    artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n1 | sed 's/Test unit written to //' || true)
    # Shown from the repository root: fuzz/artifacts/TARGET/crash-...
    if [[ $artifact == "$PWD"/* ]]; then
      artifact="fuzz/${artifact#"$PWD"/}"
    elif [[ -n $artifact && $artifact != /* ]]; then
      artifact="fuzz/${artifact#./}"
    fi
    rows+=("$(printf '| %-18s | %12s | %7s | %s |' "$t" "$execs" "$corpus_n" "CRASH (exit $rc) ${artifact:-see fuzz/$log}")")
    crashes+=("$t: ${artifact:-no artifact, exit $rc}; log fuzz/$log")
    echo "---- fuzz: $t failed (exit $rc); end of its log:" >&2
    grep -v '^#[0-9]' "$log" | tail -n 40 >&2
  fi
done

table=$(
  echo "| target             | executions   | corpus  | crashes |"
  echo "|--------------------|-------------:|--------:|---------|"
  printf '%s\n' "${rows[@]}"
)
echo
echo "fuzz summary: ${secs}s per target, sanitizer $sanitizer, build ${build_secs}s, $total_execs executions in all"
echo "$table"

if [[ $record -eq 1 ]]; then
  {
    echo
    echo "## $(date -u +%Y-%m-%dT%H:%MZ): ${secs}s per target"
    echo
    echo "Commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(rustc --version), sanitizer \`$sanitizer\`," \
      "$total_execs executions in all. \"corpus\" counts the inputs in fuzz/.work/ after the run."
    echo
    echo "$table"
  } >>RESULTS.md
  echo "fuzz: recorded in fuzz/RESULTS.md"
fi

if [[ ${#crashes[@]} -gt 0 ]]; then
  echo >&2
  echo "fuzz: ${#crashes[@]} target(s) crashed:" >&2
  printf '  %s\n' "${crashes[@]}" >&2
  exit 1
fi
