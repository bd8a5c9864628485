#!/usr/bin/env bash
# One same-run measurement of the speed figures in BENCHMARKS.md: ferroflow's W2D benches (the
# fused engine beside the burn path, `ferroflow bench w2d`, then the burn path's own
# `benches/w2d.rs`) and exact-OT bench, each followed by its PyTorch/POT peer, twice,
# interleaved; with the machine
# (lscpu), thread counts and load average. Peers need ~/peers-venv (../shared/bench/README.md).
#
#   bash crates/ferroflow/benches/run_peers.sh [train_steps] > bench-run.txt
#
# MNIST_STEPS=N adds, after the rounds, the MNIST 16×16 training speed of the PyTorch peer
# (benches/peers/mnist_peer.py, U-Net and MLP field, batch 128, 2 threads, no sampling; images/s
# and the 100-digit Euler-50 grid time in its run.json) for N steps each; MNIST data from
# FERROFLOW_DATA or ../shared/data/mnist (the ferroflow side: benches/digits_speed.sh).
set -euo pipefail
cd "$(dirname "$0")/../../.."
steps=${1:-2000}
py=${PEERS_PYTHON:-$HOME/peers-venv/bin/python}
shared=${SHARED:-../shared/bench}
cargo bench -p ferroflow --no-run -q --bench w2d --bench coupling 2>/dev/null
cargo build --release -q -p ferroflow-cli
echo "## machine"; lscpu | grep -E "Model name|^CPU\(s\)|Flags" | sed 's/Flags:.*\(avx512f\).*/Flags: ... avx512f .../'
date -u; uptime
for round in 1 2; do
  echo "## round $round: ferroflow bench w2d (engine and burn)"; target/release/ferroflow bench w2d --rounds 5 --json; uptime
  echo "## round $round: ferroflow w2d (burn)"; cargo bench -q -p ferroflow --bench w2d -- "$steps"; uptime
  echo "## round $round: peers_2d"; "$py" "$shared/peers_2d.py" "$steps"; uptime
  echo "## round $round: peers_latency"; "$py" "$shared/peers_latency.py"; uptime
  echo "## round $round: ferroflow exact OT"
  cargo bench -q -p ferroflow --bench coupling -- --warm-up-time 1 --measurement-time 3 --noplot 2>&1 | grep -E "^[a-z_/0-9]+ +time|time:"
  echo "## round $round: POT ot.emd"; "$py" crates/ferroflow/benches/peers/pot_emd.py --rounds 15; uptime
done
if [ -n "${MNIST_STEPS:-}" ]; then
  for model in unet mlp; do
    echo "## mnist peer: $model, $MNIST_STEPS steps"
    "$py" crates/ferroflow/benches/peers/mnist_peer.py --model "$model" --steps "$MNIST_STEPS" --threads 2 \
      --no-sample --log-every 1000000 --out "${TMPDIR:-/tmp}/mnist-peer-$model" 2>/dev/null
    uptime
  done
fi
