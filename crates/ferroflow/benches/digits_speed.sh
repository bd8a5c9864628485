#!/usr/bin/env bash
# Digits speed beside PyTorch (BENCHMARKS.md, "the MLP field in 30 minutes"): the 16×16 MLP's
# training images/s on the burn path, the fused engine and PyTorch in one run, then 100-digit
# grid times (Euler 50, w = 0 and 2) of the two 30-minute models under runs/digits/. Quiet machine.
#   bash crates/ferroflow/benches/digits_speed.sh
set -uo pipefail
cd "$(dirname "$0")/../../.."
m=${MNIST:-${FERROFLOW_DATA:-../shared/data/mnist}}
py=${PY:-$HOME/peers-venv/bin/python}
bin=${FERROFLOW_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p ferroflow-cli
  bin=target/release/ferroflow
fi
rm -rf /tmp/sp && mkdir -p /tmp/sp
for eng in burn fused; do
  steps=$([ $eng = burn ] && echo 150 || echo 1500)
  $bin train --mnist $m --field mlp --engine $eng --steps $steps --seed 0 --threads 2 --samples 0 -q -o /tmp/sp/$eng 2>/tmp/sp/$eng.log
  python3 -c "
import csv; r=list(csv.reader(open('/tmp/sp/$eng/loss.csv')))[1:]
s0,t0=int(r[9][0]),float(r[9][3]); s1,t1=int(r[-1][0]),float(r[-1][3])
print('$eng', 'steps', s1, 'images/s (steps 10..end)', round((s1-s0)*128/(t1-t0),1))"
done
"$py" crates/ferroflow/benches/peers/mnist_peer.py --model mlp --steps 1500 --no-sample --threads 2 --seed 0 --data $m --out /tmp/sp/pt > /tmp/sp/pt.log 2>&1
tail -1 /tmp/sp/pt.log
for ck in runs/digits/mlp-minutes30/ff/model.safetensors runs/digits/unet-minutes30/ff/model.safetensors; do
  for w in 0 2; do
    t0=$(date +%s.%N); $bin sample --ckpt $ck -n 100 --steps 50 --cfg $w -o /tmp/sp/g.png 2>/dev/null; t1=$(date +%s.%N)
    echo "grid100 euler50 $ck w=$w $(python3 -c "print(round($t1-$t0,2))") s"
  done
done
