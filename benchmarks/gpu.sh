#!/usr/bin/env bash
# GPU benchmarks in one go, for a lent GPU machine (no install: its python3 has jax,
# equinox, optax, typer, tqdm; pythia8mc is missing, so the shower's peer figures are
# the CPU result's). Usage, from the repository root, with the PDF grid copied to .gpu/:
#   bash benchmarks/gpu.sh OUTDIR [shower|me|mtop ...]
set -uo pipefail
out=${1:?output folder}; shift
parts=${*:-shower me mtop}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, diffhep; print('jax', jax.__version__, jax.devices())"
for part in $parts; do
  start=$(date +%s)
  case $part in
    shower) timeout 300 python3 benchmarks/bench_shower.py --sizes 1e6,2e6 --dtypes float64,float32 --no-cpu-devices \
              --no-single-thread --no-peer --peer-from benchmarks/results/shower-cpu.json \
              --repeats 3 --repeats-large 3 --out "$out" 2>&1 | tee "$out/shower.log" ;;
    me) timeout 280 python3 benchmarks/run.py me 2>&1 | tee "$out/me.log"
        cp benchmarks/results/me-gpu.json "$out/" ;;
    mtop) timeout 120 python3 benchmarks/bench_mtop.py --pdf .gpu/NNPDF31_lo_as_0118_0000.dat --out "$out" 2>&1 \
            | tee "$out/mtop.log" ;;
  esac
  echo "== $part: $(( $(date +%s) - start )) s"
done
