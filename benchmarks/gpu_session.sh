#!/usr/bin/env bash
# The GPU checks of the Pallas kernels, prepared for one short session on a
# GPU machine (at most 10 minutes in all). Each stage has its own time limit and
# a failing stage does not stop the next, so one run reports on all of them:
#
#   1. The versions and the device.
#   2. The kernels compiled for this GPU and run against the reference,
#      values and gradients: benchmarks/check_kernels.py (jax only), then,
#      where pytest is installed, the pallas cases of tests/fast/test_pallas.py
#      and tests/fast/test_fused.py. (On a CPU these run in interpret mode.)
#   3. Timings beside cuDNN (torch, jax.experimental.rnn), Flax and the fused
#      XLA path, saved under DIR: first the "cpu" grid, whose small sizes
#      (H = 64) are where the kernel keeps W_hh on chip in float32, then
#      DeepBench's sizes (the "gpu" grid), where the loops fall back to
#      lax.scan past ONCHIP_BYTES.
#   4. The parallel solve (benchmarks/bench_parallel.py --demo): a GRU at
#      B = 16, T = 10,000, the DEER demo's setting, against the scan.
#   5. The minimal cells at the paper's lengths (benchmarks/bench_min_cells.py
#      --paper): minGRU and minLSTM on their associative scans against the
#      GRU and the LSTM, B = 64, H = 256, T = 512 and 4096.
#
# Usage, from the repository root: bash benchmarks/gpu_session.sh [DIR]
# DIR (default: $OUT if set, else benchmarks/results) receives the log,
# gpu_session.log, and the results that the harness's --save writes.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${OUT:-benchmarks/results}}
mkdir -p "$dir"
log="$dir/gpu_session.log"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# Several test processes share the one GPU: none takes most of its memory.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

stage() {  # stage NAME SECONDS COMMAND...
  local name=$1 seconds=$2
  shift 2
  echo "== $name (limit ${seconds}s): $*" | tee -a "$log"
  local start=$SECONDS
  timeout "$seconds" "$@" 2>&1 | tail -n 60 | tee -a "$log"
  echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start))s" | tee -a "$log"
}

stage environment 60 python -c '
import platform, jax, jaxlib
print("python", platform.python_version(), "jax", jax.__version__,
      "jaxlib", jaxlib.__version__, "backend", jax.default_backend())
print("devices", jax.devices())'

stage kernels-vs-reference 150 python benchmarks/check_kernels.py
if python -c "import pytest, xdist, hypothesis" 2>/dev/null; then
  stage kernel-tests 180 python -m pytest -q -p no:cacheprovider -n 4 --full \
    -k pallas tests/fast/test_pallas.py tests/fast/test_fused.py
else
  echo "== kernel-tests: skipped (pytest, pytest-xdist or hypothesis missing)" | tee -a "$log"
fi

bench=(python -m benchmarks --impls jaxrnn-pallas,jaxrnn-fused,torch,jax-cudnn,flax-linen
  --repeats 5 --save --results "$dir")
stage timings-small-sizes 120 "${bench[@]}" --grid cpu
stage timings-deepbench 120 "${bench[@]}" --grid gpu --cells lstm
# The parallel solve (DEER) at the published demo's setting: a GRU, B = 16,
# T = 10,000, against the sequential scan and the fused path.
stage parallel-deer-demo 150 python benchmarks/bench_parallel.py --demo --repeats 3 \
  --save --results "$dir"
# The minimal cells' associative scans against the GRU and the LSTM at the
# paper's lengths (Feng et al. 2024: 175x at T = 512 on a GPU).
stage min-cells-paper 150 python benchmarks/bench_min_cells.py --paper --repeats 3 \
  --save --results "$dir"
