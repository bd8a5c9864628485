#!/usr/bin/env bash
# The 2D quality table of BENCHMARKS.md: 20k steps of the W2D model (CondOT, Adam 1e-3,
# batch 256) per world and coupling, then 2,000 Euler-100 samples scored against fresh i.i.d.
# draws (exact W2 averaged over 5 seeds, next to the two-sample floor at the same size; MMD).
#
#   bash crates/ferroflow/benches/quality_2d.sh [steps] [worlds...]
#   ENGINE=burn|fused|auto (default auto: the fused engine on the CPU) picks the trainer.
#
# Prints one JSON line per run: world, coupling, steps, steps/s and the eval.json fields.
set -euo pipefail
cd "$(dirname "$0")/../../.."
steps=${1:-20000}
shift || true
worlds=${*:-moons 8gaussians checkerboard}
bin=${FERROFLOW_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p ferroflow-cli
  bin=target/release/ferroflow
fi
mkdir -p runs/quality
for world in $worlds; do
  for coupling in independent exact_ot; do
    out=runs/quality/$world-$coupling
    start=$(date +%s.%N)
    "$bin" train --world "$world" --coupling "$coupling" --engine "${ENGINE:-auto}" --steps "$steps" --samples 2000 -q -o "$out" 2>"$out.log" || { cat "$out.log"; exit 1; }
    end=$(date +%s.%N)
    sps=$(python3 -c "print(round($steps/($end-$start), 1))")
    python3 -c "import json,sys; r=json.load(open('$out/eval.json')); r.update(world='$world', coupling='$coupling', steps=$steps, steps_per_s_incl_eval=$sps); print(json.dumps(r))"
  done
done
