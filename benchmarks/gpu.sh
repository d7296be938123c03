#!/usr/bin/env bash
# GPU benchmarks in one go, for a lent GPU machine (no install: its python3 has jax,
# equinox, optax, typer, tqdm; pythia8mc is missing, so the shower's peer figures are
# the CPU result's). Usage, from the repository root, with the PDF grid copied to .gpu/:
#   bash benchmarks/gpu.sh OUTDIR [shower|target|target8|me|me-rows|mtop|profile|sweep32|unroll32|tune|jumps|tests ...]
# SHOWER_N (default 2000000) sets the shower's event count, for a quick check elsewhere.
# Time on an H100: shower ~400 s (six compiles of 35-60 s), me ~330 s (g g > t t~ g g value+grad compiles for 130 s),
# mtop ~180 s, profile ~60 s: more than one 10-minute call, so name the parts. me-rows
# (~100 s) is the ME's headline rows without the g g > t t~ g g value+grad compile, one
# JSON line per row in OUTDIR/me-rows.jsonl. tune times the ME at other events per step
# (OUTDIR/me-sizes.jsonl), then the shower phases with XLA's command buffers on loops: its
# first H100 run reached only the ME rows in 460 s (g g > t t~ g g compiled for 100 s at
# 1 608 events per step), so give it a lease of its own.
set -uo pipefail
out=${1:?output folder}; shift
parts=${*:-shower me mtop profile}
n=${SHOWER_N:-2000000}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, diffhep; print('jax', jax.__version__, jax.devices())"
for part in $parts; do
  start=$(date +%s)
  case $part in
    # Since the accelerator's six slot tiers (stop 20) each mode compiles for 35-60 s:
    # one dtype at 2e6 takes ~200 s, so the part runs float32 first.
    shower) timeout 540 python3 benchmarks/bench_shower.py --sizes "$n" --dtypes float32,float64 --no-cpu-devices \
              --no-single-thread --no-peer --peer-from benchmarks/results/shower-cpu.json \
              --repeats 3 --repeats-large 3 --out "$out" ;;
    me) timeout 330 python3 benchmarks/run.py me && cp benchmarks/results/me-gpu.json "$out/" ;;
    me-rows)
      for row in "g g > t t~|1e6|float64|0" "g g > t t~|1e6|float64|1" "g g > t t~|1e6|float32|0" \
                 "g g > t t~ g g|1e5|float64|0" "g g > t t~ g g|1e5|float32|0" \
                 "g g > t t~, t > b u d~, t~ > b~ d u~|1e6|float64|0" "g g > t t~, t > b u d~, t~ > b~ d u~|1e5|float64|1"; do
        IFS='|' read -r proc rows_n dtype grad <<< "$row"
        timeout 120 python3 benchmarks/bench_me.py --one "$proc" "$rows_n" "$dtype" "$grad" | tee -a "$out/me-rows.jsonl"
      done ;;
    tune)
      sizes="default me_lanes=2**24,me_max_chunk=2**18 me_lanes=2**26,me_max_chunk=2**20"
      me() { timeout "$1" python3 benchmarks/profile_me.py "${@:2}" --repeats 3 --json "$out/me-sizes.jsonl"; }
      me 60 "g g > t t~" 1000000 --sizes $sizes
      me 150 "g g > t t~ g g" 100000 --sizes me_lanes=2**26 me_lanes=2**28
      me 90 "g g > t t~" 1000000 --grad --sizes $sizes
      me 60 "g g > t t~, t > b u d~, t~ > b~ d u~" 1000000 --sizes default me_lanes=2**26,me_max_chunk=2**20
      me 60 "g g > t t~, t > b u d~, t~ > b~ d u~" 100000 --grad --sizes default me_lanes=2**26,me_max_chunk=2**20
      for flags in "" "--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL"; do
        XLA_FLAGS="$flags" timeout 70 python3 benchmarks/profile_shower.py --events "$n" --repeats 3 --out "/tmp/ps$RANDOM" \
          | sed "s|^|[$flags] |"
      done
      me 200 "g g > t t~ g g" 10000 --grad --sizes me_lanes=2**28 ;;
    # The H100 forward target (1e7 shower + thrust events/s) alone: float32 at 4e6, the
    # forward modes only (each compiles for 35-60 s; JSON even when the JVP would not fit).
    target) timeout 240 python3 benchmarks/bench_shower.py --sizes 4000000 --dtypes float32 --no-cpu-devices \
              --no-single-thread --no-peer --peer-from benchmarks/results/shower-cpu.json \
              --modes shower,shower+thrust --repeats 3 --repeats-large 3 --out "$out" ;;
    # The same at 8e6 events (float32 takes ~1 KB of momenta per event: ~8 GB), in a
    # folder of its own; a failure to fit is recorded in its JSON.
    target8) timeout 150 python3 benchmarks/bench_shower.py --sizes 8000000 --dtypes float32 --no-cpu-devices \
              --no-single-thread --no-peer --peer-from benchmarks/results/shower-cpu.json \
              --modes shower,shower+thrust --repeats 3 --repeats-large 3 --out "$out/n8m" ;;
    # The cascade's work-queue steps per test of its loop condition (WorkSizes.cascade_unroll
    # 1, 4, 8), float32, the cascade phase alone.
    unroll32) timeout 200 python3 benchmarks/profile_shower.py --events "$n" --float32 --sweep unroll --repeats 3 --out "$out" ;;
    # float32 phases and the A/Bs of the accelerator's loop choices against the CPU's:
    # slot tiers, skipped steps, thrust bucket sizes (each re-traced: ~60 s apiece).
    sweep32) timeout 400 python3 benchmarks/profile_shower.py --events "$n" --float32 --sweep tiers,skip,buckets --repeats 3 --out "$out" ;;
    # The GPU-sensitive tests (float64 to 1e-12 against MadGraph, conservation, the work
    # queue, buckets, devices): the image has pytest, xdist and chex but not beartype, so
    # the jaxtyping hook is off; four workers share the card without preallocating. The
    # log is verbose, one line per test as it ends, so a run cut at its time limit still
    # names its failures (stop 23 lost two failures' names to a quiet log cut so).
    tests) XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 500 python3 -m pytest -v -p no:cacheprovider -p no:benchmark \
             -o addopts="" -m "not slow" -rf -n 4 \
             tests/test_shower.py tests/test_me.py tests/test_buckets.py tests/test_devices.py > "$out/pytest.log" 2>&1
           grep -E "FAILED|ERROR|passed|failed" "$out/pytest.log" | tail -40 ;;
    # The jump partners' cost against realize's JVP (H100, stop 19: 3.7x at 10^6).
    jumps) timeout 150 python3 benchmarks/run.py jumps && cp benchmarks/results/jumps-gpu.json "$out/" ;;
    mtop) timeout 180 python3 benchmarks/bench_mtop.py --pdf .gpu/NNPDF31_lo_as_0118_0000.dat --out "$out" ;;
    # Phase times and the busiest kernels of one shower + thrust (the trace stays here:
    # its folders are too deep to come back).
    profile) timeout 150 python3 benchmarks/profile_shower.py --events "$n" --repeats 3 --trace --out /tmp/profile \
               && cp /tmp/profile/profile-shower-*.json "$out/" ;;
  esac
  echo "== $part: $(( $(date +%s) - start )) s"
done
