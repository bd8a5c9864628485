#!/usr/bin/env bash
# BENCHMARKS.md, "Digits 28×28": the 28×28 U-Net at 120 minutes. Resumes the 30-minute run
# (runs/digits28/unet-minutes30/ff, 399 steps; made by `ferroflow train --mnist … --size 28
# --field unet --steps 1000000 --minutes 30 -o runs/digits28/unet-minutes30/ff`) to 1,596 steps
# (4×: what 120 minutes give at its rate), then 2,000 digits by Euler 10 at w = 0 and 2, scored
# by the 28×28 classifier (`ferroflow classifier --size 28 -o $CLF`). One JSON line per cell.
set -uo pipefail
cd "$(dirname "$0")/../../.."
bin=${FERROFLOW_BIN:-target/release/ferroflow}
mnist=${MNIST:-../shared/data/mnist}
clf=${CLF:-runs/digits/classifier28.safetensors}
out=runs/digits28/unet-minutes120
if [ ! -f "$out/ff/model.safetensors" ]; then mkdir -p "$out" && cp -r runs/digits28/unet-minutes30/ff "$out/ff"; fi
start=$(date +%s)
"$bin" train --mnist "$mnist" --size 28 --field unet --resume "$out/ff/model.safetensors" --steps 1596 --seed 0 --threads 2 -q -o "$out/ff" 2>"$out/ff.log"
echo "{\"field\": \"unet\", \"train_wall_s\": $(( $(date +%s) - start )), \"rc\": $?}"
for s in euler:10; do
  for w in 0 2; do
    f=$out/ff/samples_${s/:/}_w$w.npy
    t0=$(date +%s.%N)
    "$bin" sample --ckpt "$out/ff/model.safetensors" -n 2000 --cfg "$w" --solver "${s%%:*}" --steps "${s#*:}" -o "$f" 2>>"$out/ff.log" || { echo "{\"w\": $w, \"error\": \"$(tail -1 "$out/ff.log")\"}"; continue; }
    t1=$(date +%s.%N)
    "$bin" eval "$f" --classifier "$clf" --mnist "$mnist" --json |
      python3 -c "import json,sys; r=json.load(sys.stdin); r.update(field='unet', size=28, budget='steps:1596', sampler='$s', w=$w, sample_s=round($t1-$t0,1)); print(json.dumps(r))"
  done
done
