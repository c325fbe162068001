#!/usr/bin/env bash
# Instructions per path-step through the library's ensemble routes (ROUTES:
# per_path = Ensemble + SdeProblem::per_path, lockstep = Ensemble + SdeProblem::new, checked
# to pick the lockstep driver; default both), for each scheme given (default: em milstein),
# on one problem (--problem gbm: GBM, the default; --problem sf: the population SGD-SDE of
# scalar factorisation, the yardstick's P2; --problem mf: the population SGD-SDE of matrix
# factorisation, general noise, d = 18 — RK-Milstein reads Lévy areas; slow under valgrind,
# so e.g. PATHS=64 STEPS=20), counted by callgrind: repeatable whatever the
# machine is doing. Two runs per scheme (S and 2S steps); the difference divided by the
# extra path-steps cancels setup and reduction.
#
#   bash benches/callgrind.sh                 # gbm: em milstein
#   bash benches/callgrind.sh em heun rk_milstein   # (lockstep: em, milstein, heun, rk_milstein)
#   bash benches/callgrind.sh --problem sf em rk_milstein
#   PATHS=64 STEPS=20 bash benches/callgrind.sh --problem mf rk_milstein
#   ROUTES=per_path bash benches/callgrind.sh em heun
#
# valgrind reports no AVX-512, so the lockstep route is counted with its AVX2 kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "error: valgrind is not installed" >&2; exit 1; }
PROBLEM=gbm
if [ "${1:-}" = "--problem" ]; then
  PROBLEM=${2:?--problem: gbm, sf or mf}
  shift 2
fi
cargo build -q --release --example instructions
BIN=target/release/examples/instructions
PATHS=${PATHS:-1000}
STEPS=${STEPS:-100}
count() {
  local out
  out=$(mktemp)
  RAYON_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" \
    --problem "$PROBLEM" --paths "$PATHS" --steps "$1" --scheme "$2" --route "$3" >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$out"
  rm -f "$out"
}
ROUTES=${ROUTES:-per_path lockstep}
for scheme in "${@:-em milstein}"; do
  for s in $scheme; do
    for route in $ROUTES; do
      a=$(count "$STEPS" "$s" "$route")
      b=$(count $((2 * STEPS)) "$s" "$route")
      python3 -c "print(f'$PROBLEM, $s, $route: {($b - $a) / ($PATHS * $STEPS):.1f} instructions per path-step')"
    done
  done
done
