#!/usr/bin/env bash
# The simulator's calibration (docs/SIMULATION.md): for each peer count, a
# real run (a fresh `ztream serve` on loopback with the demo library, then
# `ztream load` at 10x) and the same run simulated (docs/sim/load-N.json,
# seeds 1–3). Prints offload and server MB of each. Takes ~1.5 min per
# peer count; run it on an otherwise idle machine.
#   scripts/sim-calibrate.sh 16 50 100
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/ztream
go build -o "$bin" ./cmd/ztream
trap 'pkill -f "$bin serve" 2>/dev/null || true' EXIT
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(16 50 100)
for n in "${counts[@]}"; do
  data=$(mktemp -d)
  "$bin" serve --addr 127.0.0.1:18480 --data "$data" --udp-port 18481 --ice-ips 127.0.0.1 --log-level warn \
    --max-peers-per-ip 100000 >"$data.log" 2>&1 &
  hub=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18480/healthz >/dev/null && break; sleep 0.2; done
  "$bin" load --server http://127.0.0.1:18480 --peers "$n" --duration 1m --ramp 15s --speed 10 --json 2>/dev/null |
    tail -1 | python3 -c "import json,sys; r=json.load(sys.stdin); print('real $n peers: offload %.3f, server %.2f MB, %d plays' % (r['offload_ratio'], r['server_bytes']/1e6, r['playbacks']))"
  kill "$hub"; wait "$hub" 2>/dev/null || true
  rm -rf "$data" "$data.log"
  for seed in 1 2 3; do
    "$bin" sim --scenario "docs/sim/load-$n.json" --seed "$seed" --json 2>/dev/null | tail -1 |
      python3 -c "import json,sys; r=json.load(sys.stdin); print('sim  $n peers, seed $seed: offload %.3f, server %.2f MB, %d plays' % (r['offload'], r['server_bytes']/1e6, r['plays']))"
  done
done
