#!/usr/bin/env bash
# The simulator's documented runs (docs/SIMULATION.md: "Scenarios",
# "Scaling" and "What moves the server share"): each writes docs/sim/runs/NAME.json and NAME.svg. Two run at a
# time (-j to change); the 100,000-listener hour takes ~10 min of one core
# and 4.5 GB, the day of 10,000 listeners longer. Name runs to do only those:
#   scripts/sim-scenarios.sh                      # all of them
#   scripts/sim-scenarios.sh community flash-50k  # two of them
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=2
if [ "${1:-}" = "-j" ]; then jobs=$2; shift 2; fi
bin=$(mktemp -d)/ztream
go build -o "$bin" ./cmd/ztream
out=docs/sim/runs
logs=$(mktemp -d)
mkdir -p "$out"
declare -A runs=(
  [spotify-100k]="--listeners 100000 --hours 1 --start-hour 10"
  [spotify-10k-day]="--listeners 10000 --hours 24 --start-hour 0"
  [spotify-10k-evening]="--listeners 10000 --hours 2 --start-hour 18"
  [unreachable-10k-evening]="--scenario unreachable --listeners 10000 --hours 2 --start-hour 18"
  [community]="--scenario community"
  [flash-50k]="--scenario flash"
  [flash-50k-3hubs]="--scenario flash --hubs 3"
  [scale-100]="--listeners 100 --hours 1 --start-hour 10"
  [scale-1k]="--listeners 1000 --hours 1 --start-hour 10"
  [scale-10k]="--listeners 10000 --hours 1 --start-hour 10"
)
# What moves the server share: one change at a time (sens-NAME).
for f in docs/sim/sensitivity/*.yaml; do
  runs[sens-$(basename "$f" .yaml)]="--scenario $f"
done
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!runs[@]}")
for name in "${names[@]}"; do
  [ -n "${runs[$name]:-}" ] || { echo "unknown run $name; known: ${!runs[*]}" >&2; exit 2; }
done
for name in "${names[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  # shellcheck disable=SC2086 # the flags are words
  ( "$bin" sim ${runs[$name]} --name "$name" --out "$out" >"$logs/$name.txt" 2>&1 &&
    echo "$name: $(grep '^bytes' "$logs/$name.txt")" ||
    { echo "$name failed:"; tail -5 "$logs/$name.txt"; } ) &
done
wait
echo "reports: $out; full output: $logs"
