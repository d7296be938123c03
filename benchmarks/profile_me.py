"""Events/s and a per-fusion profile of `diffhep.me.matrix_element` on this machine.

    python benchmarks/profile_me.py "g g > t t~" 65536            # value
    python benchmarks/profile_me.py "g g > t t~ g g" 512 --grad   # value + gradient
    python benchmarks/profile_me.py "g g > t t~" 65536 --top 20   # and the 20 costliest kernels
    python benchmarks/profile_me.py "g g > t t~ g g" 100000 --sizes default me_lanes=2**26 --json rows.jsonl

Pin it for numbers that compare (`taskset -c 1` and
`XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"`), and
compare only against a run of the code before a change in the same minutes: the
machine's speed drifts. `--top` traces two calls with `jax.profiler` and sums the time
of each XLA kernel (fusion) per call; the trace itself slows the run, so take rates
from the untraced timing. Match kernel names to shapes with
`XLA_FLAGS=--xla_dump_to=DIR --xla_dump_hlo_as_text` (the `*after_optimizations.txt`).
`--sizes` times the kernel once per setting of the backend's `WorkSizes` (`default`, or
`FIELD=VALUE[,FIELD=VALUE]`, e.g. the events per sequential step through `me_lanes`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import parse_sizes, time_jax, trace_top, work_sizes_changed  # noqa: E402
from bench_me import make_events  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("process")
    parser.add_argument("n", type=int)
    parser.add_argument("--grad", action="store_true", help="value_and_grad w.r.t. momenta and all parameters")
    parser.add_argument("--top", type=int, default=0, help="print the K costliest XLA kernels")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", nargs="+", default=["default"], help="WorkSizes settings to time in turn")
    parser.add_argument("--json", type=Path, help="append one JSON line per setting to this file")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)  # the benchmark's choice, never the library's
    from diffhep.me import SMParameters, get_process, matrix_element

    momenta = jnp.asarray(make_events(args.process, args.n, 1))
    params = SMParameters.from_param_card()
    if args.grad:
        fn = jax.value_and_grad(lambda p, q: jnp.sum(matrix_element(args.process, p, q)), argnums=(0, 1))
    else:
        fn = lambda p, q: matrix_element(args.process, p, q)  # noqa: E731
    from diffhep.me._api import chunk_size

    for setting in args.sizes:
        with work_sizes_changed(**parse_sizes(setting)):
            chunk = chunk_size(get_process(args.process))
            t0 = time.perf_counter()
            compiled = jax.jit(fn).lower(momenta, params).compile()
            compile_s = time.perf_counter() - t0
            timing = time_jax(compiled, momenta, params, repeats=args.repeats)
        best = min(timing["runs_s"])
        mode = "value + grad" if args.grad else "value"
        print(f"{args.process!r} {mode}, {args.n} events, sizes {setting} ({chunk} events per step): compile "
              f"{compile_s:.1f} s, best of {args.repeats} {best * 1e3:.2f} ms = {args.n / best:.4g} events/s", flush=True)
        if args.json:
            row = {"device": jax.devices()[0].device_kind, "process": args.process, "n": args.n, "grad": args.grad,
                   "dtype": str(momenta.dtype), "sizes": setting, "chunk": chunk, "compile_s": compile_s,
                   "best_s": best, "runs_s": timing["runs_s"], "events_per_s": args.n / best}  # fmt: skip
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    if not args.top:
        return
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            for _ in range(2):
                jax.block_until_ready(compiled(momenta, params))
        rows = trace_top(Path(tmp), args.top)
    print(f"{'ms per call':>12} {'runs':>6}  kernel")
    for ms, calls, name in rows:
        print(f"{ms / 2:12.2f} {calls // 2:6d}  {name}")


if __name__ == "__main__":
    main()
