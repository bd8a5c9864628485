#!/usr/bin/env bash
# The digits tables of BENCHMARKS.md: ferroflow and its PyTorch twin (benches/peers/mnist_peer.py,
# same U-Net / MLP, recipe, data and seed) trained for the same steps (or minutes), then 2,000
# digits (200 a class) per sampler and guidance w, all scored by ferroflow's digit classifier:
# accuracy on the requested digit and the Fréchet distance to 2,000 test digits, beside the
# real-vs-real (train vs test) distance at the same count.
#
#   MNIST=../shared/data/mnist bash crates/ferroflow/benches/digits.sh FIELD BUDGET [SAMPLERS] [WS]
#     FIELD    unet | mlp
#     BUDGET   "steps:N" or "minutes:M"
#     SAMPLERS default "euler:10 euler:50"  (euler:N, midpoint:N, heun:N, rk4:N, dopri5)
#     WS       default "0 2"
#
# SIZE=16 (default; PyTorch's adaptive_avg_pool2d of the 28×28 files) or SIZE=28, the folder
# runs/digits/ or runs/digits28/.
# Needs: a classifier (made once by `ferroflow classifier --mnist $MNIST --size $SIZE -o $CLF`;
# default CLF=runs/digits/classifier$SIZE.safetensors) and the peers' Python (PY, default
# ~/peers-venv/bin/python with torch). Prints one JSON line per (framework, sampler, w).
# SKIP_TRAIN=ff|pt|both reuses the model(s) an earlier run left under the same folder and only
# samples and scores them (PyTorch's through benches/peers/peer_eval.py, into pt-eval/), for
# more samplers or w. A sampler that diverges (NaN) prints its line with an "error" instead.
set -euo pipefail
cd "$(dirname "$0")/../../.."
field=$1
budget=$2
samplers=${3:-euler:10 euler:50}
ws=${4:-0 2}
mnist=${MNIST:-${FERROFLOW_DATA:-../shared/data/mnist}}
py=${PY:-$HOME/peers-venv/bin/python}
size=${SIZE:-16}
case $size in 16) root=runs/digits ;; 28) root=runs/digits28 ;; *) echo "SIZE: 16 or 28" >&2; exit 2 ;; esac
clf=${CLF:-runs/digits/classifier$size.safetensors}
threads=${THREADS:-2}
bin=${FERROFLOW_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p ferroflow-cli
  bin=target/release/ferroflow
fi
out=$root/$field-${budget/:/}
mkdir -p "$out"
if [ ! -f "$clf" ]; then
  "$bin" classifier --mnist "$mnist" --size "$size" -o "$clf"
fi
case $budget in
  steps:*) ff_budget=(--steps "${budget#steps:}"); pt_budget=(--steps "${budget#steps:}") ;;
  minutes:*) ff_budget=(--steps 1000000 --minutes "${budget#minutes:}"); pt_budget=(--minutes "${budget#minutes:}") ;;
  *) echo "BUDGET: steps:N or minutes:M" >&2; exit 2 ;;
esac
# ferroflow
skip=${SKIP_TRAIN:-}
case $skip in ff | both) ;; *)
  "$bin" train --mnist "$mnist" --size "$size" --field "$field" "${ff_budget[@]}" --seed 0 --threads "$threads" -q -o "$out/ff" 2>"$out/ff.log" ;;
esac
for s in $samplers; do
  for w in $ws; do
    case $s in
      dopri5) flags=(--solver dopri5) ;;
      *) flags=(--solver "${s%%:*}" --steps "${s#*:}") ;;
    esac
    f=$out/ff/samples_${s/:/}_w$w.npy
    if ! "$bin" sample --ckpt "$out/ff/model.safetensors" -n 2000 --cfg "$w" "${flags[@]}" -o "$f" 2>>"$out/ff.log"; then
      echo "{\"framework\": \"ferroflow\", \"field\": \"$field\", \"budget\": \"$budget\", \"sampler\": \"$s\", \"w\": $w, \"error\": \"$(tail -1 "$out/ff.log")\"}"
      continue
    fi
    "$bin" eval "$f" --classifier "$clf" --mnist "$mnist" --json |
      python3 -c "import json,sys; r=json.load(sys.stdin); r.update(framework='ferroflow', field='$field', budget='$budget', sampler='$s', w=$w); print(json.dumps(r))"
  done
done
# PyTorch, same recipe
pt_samplers=$(echo "$samplers" | tr ' ' ',')
pt_ws=$(echo "$ws" | tr ' ' ',')
pt=$out/pt
if [ "$skip" = pt ] || [ "$skip" = both ]; then
  pt=$out/pt-eval
  "$py" crates/ferroflow/benches/peers/peer_eval.py --ckpt "$out/pt/model.safetensors" --threads "$threads" \
    --samplers "$pt_samplers" --w "$pt_ws" --per-class 200 --data "$mnist" --out "$pt" >>"$out/pt.log" 2>&1
else
  "$py" crates/ferroflow/benches/peers/mnist_peer.py --model "$field" --size "$size" "${pt_budget[@]}" --threads "$threads" --seed 0 \
    --samplers "$pt_samplers" --w "$pt_ws" --per-class 200 --data "$mnist" --out "$pt" >"$out/pt.log" 2>&1
fi
for s in $samplers; do
  for w in $ws; do
    f=$pt/samples_${s/:/}_w$w.npy
    "$bin" eval "$f" --classifier "$clf" --labels "$pt/labels.npy" --mnist "$mnist" --json |
      python3 -c "import json,sys; r=json.load(sys.stdin); r.update(framework='pytorch', field='$field', budget='$budget', sampler='$s', w=$w); print(json.dumps(r))"
  done
done
