#!/usr/bin/env bash
# Reproduce docs/RESULTS.md: run every command listed there, one after the
# other, and write what each printed (with its wall time) to
# docs/results/NAME.txt and its plot to docs/results/NAME.png.
#
#   pip install '.[data,plot]' && bash docs/reproduce.sh            # all, ~30 min
#   bash docs/reproduce.sh adding-100 chars                         # some of them
#
# Run directories go to $RUNS (default: a new temporary folder). Run it on an
# otherwise idle machine: the times are part of the results. Every command
# scores its runs' last checkpoint (--keep last), as the results were measured.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-$(mktemp -d)}
OUT=docs/results
mkdir -p "$OUT"

declare -A CMD=(
  [adding-100]="jaxrnn compare --task adding --seq-len 100 --seeds 0 1 2"
  [adding-50]="jaxrnn compare --task adding --seq-len 50 --seeds 0 1 2"
  [adding-20]="jaxrnn compare --task adding --seq-len 20 --seeds 0 1 2"
  [adding-slow-20]="jaxrnn compare --task adding --seq-len 20 --learning-rate 3e-3 --steps 3000 --seeds 0 1 2"
  [adding-slow-50]="jaxrnn compare --task adding --seq-len 50 --learning-rate 3e-3 --steps 3000 --seeds 0 1 2"
  [adding-slow-100]="jaxrnn compare --task adding --seq-len 100 --learning-rate 3e-3 --steps 3000 --seeds 0 1 2"
  [copy-10]="jaxrnn compare --task copy --seq-len 10"
  [copy-50]="jaxrnn compare --task copy --seq-len 50"
  [copy-20]="jaxrnn compare --task copy --seq-len 20"
  [copy-100]="jaxrnn compare --task copy --seq-len 100"
  [digits]="jaxrnn compare --task digits"
  [digits-blanks-100]="jaxrnn compare --task digits --blanks 100 --steps 1600"
  [digits-blanks-100-forget-0]="jaxrnn compare --task digits --blanks 100 --steps 1600 --cell lstm --forget-bias 0"
  [digits-blanks-100-update-1]="jaxrnn compare --task digits --blanks 100 --steps 1600 --cell gru --update-bias 1"
  [digits-blanks-100-update-2]="jaxrnn compare --task digits --blanks 100 --steps 1600 --cell gru --update-bias 2"
  [sunspots]="jaxrnn compare --task sunspots --seeds 0 1 2 3 4"
  [chars]="jaxrnn train --task chars --hidden-size 512 --steps 3000"
  [precision-adding-f32]="jaxrnn compare --task adding --seq-len 100 --cell lstm gru --seeds 0 1 2 --matmul-dtype float32"
  [precision-adding-bf16]="jaxrnn compare --task adding --seq-len 100 --cell lstm gru --seeds 0 1 2 --matmul-dtype bfloat16"
  [precision-chars-f32]="jaxrnn train --task chars --hidden-size 512 --steps 3000 --matmul-dtype float32"
  [precision-chars-bf16]="jaxrnn train --task chars --hidden-size 512 --steps 3000 --matmul-dtype bfloat16"
  [chars-15min]="jaxrnn train --task chars --hidden-size 512 --steps 7000 --learning-rate 3e-3 --schedule cosine --output-dropout 0.35 --eval-every 500"
  [clip-sgd-none]="jaxrnn compare --task adding --seq-len 50 --cell rnn --optimizer sgd --learning-rate 0.5 --steps 600 --clip-norm none --seeds 0 1 2 3 4"
  [clip-sgd-1]="jaxrnn compare --task adding --seq-len 50 --cell rnn --optimizer sgd --learning-rate 0.5 --steps 600 --clip-norm 1 --seeds 0 1 2 3 4"
  [clip-adam-none]="jaxrnn compare --task adding --seq-len 50 --cell rnn --activation relu --steps 600 --clip-norm none --seeds 0 1 2 3 4"
  [clip-adam-1]="jaxrnn compare --task adding --seq-len 50 --cell rnn --activation relu --steps 600 --clip-norm 1 --seeds 0 1 2 3 4"
  [indrnn-adding-1]="jaxrnn compare --task adding --seq-len 100 --cell indrnn gru --seeds 0 1 2"
  [indrnn-adding-2]="jaxrnn compare --task adding --seq-len 100 --cell indrnn gru --num-layers 2 --seeds 0 1 2"
  [indrnn-adding-horizon-1]="jaxrnn compare --task adding --seq-len 100 --cell indrnn --recurrent-horizon 100 --seeds 0 1 2"
  [min-adding-1]="jaxrnn compare --task adding --seq-len 100 --cell min_gru min_lstm gru --seeds 0 1 2"
  [min-adding-2]="jaxrnn compare --task adding --seq-len 100 --cell min_gru min_lstm --num-layers 2 --seeds 0 1 2"
  [indrnn-adding-horizon-2]="jaxrnn compare --task adding --seq-len 100 --cell indrnn --recurrent-horizon 100 --num-layers 2 --seeds 0 1 2"
)
ORDER=(adding-100 adding-50 adding-20 adding-slow-20 adding-slow-50 adding-slow-100 copy-10 copy-20 copy-50 copy-100 digits digits-blanks-100
       digits-blanks-100-forget-0 digits-blanks-100-update-1 digits-blanks-100-update-2 sunspots chars chars-15min clip-sgd-none clip-sgd-1
       clip-adam-none clip-adam-1 precision-adding-f32 precision-adding-bf16 precision-chars-f32 precision-chars-bf16
       indrnn-adding-1 indrnn-adding-2 indrnn-adding-horizon-1 indrnn-adding-horizon-2
       min-adding-1 min-adding-2)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ORDER[@]}")

for name in "${names[@]}"; do
  cmd=${CMD[$name]:?unknown result $name}
  echo "== $name: $cmd --out $RUNS/$name --keep last"
  start=$(date +%s)
  {
    echo "\$ $cmd --keep last"
    $cmd --out "$RUNS/$name" --quiet --keep last
  } > "$OUT/$name.txt"
  seconds=$(( $(date +%s) - start ))
  echo "wall time: ${seconds} s ($(date -u +%Y-%m-%d), $(nproc) CPUs, $(python -c 'import jax; print("jax", jax.__version__)'))" >> "$OUT/$name.txt"
  if [ "$name" = chars ] || [ "$name" = chars-15min ]; then
    for t in 0.5 0.8 1.0; do
      echo "\$ jaxrnn generate RUN_DIR --length 400 --temperature $t" >> "$OUT/$name.txt"
      jaxrnn generate "$RUNS/$name" --length 400 --temperature "$t" >> "$OUT/$name.txt"
    done
  fi
  for plot in compare.png loss.png; do
    [ -f "$RUNS/$name/$plot" ] && cp "$RUNS/$name/$plot" "$OUT/$name.png"
  done
  tail -1 "$OUT/$name.txt"
done
