"""A/B of thrust's sign enumeration: small matrix products (`@`, what a CPU wants)
against the same products written out as elementwise products and sums (what
`observables._thrust._written_out` picks on a GPU), on the same events in one run.

    python benchmarks/ab_thrust_products.py [--f64] [--out FILE.jsonl]

Events as in `bench_thrust.py`; chunks mapped with `lax.map` as `thrust` does. One JSON
line per (partons, chunk, variant), and whether the two variants' signs agree (on a GPU
the float32 matrix products run in TF32, so they need not).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--f64", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--sizes", default="8:786432,12:786432,16:327680", help="partons:events,...")
    ap.add_argument("--chunks", default="16384,65536")
    args = ap.parse_args(argv)

    import jax

    if args.f64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    from diffhep import _devices
    from diffhep.observables import _thrust

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_thrust import make_events

    dtype = "float64" if args.f64 else "float32"
    written = {"matmul": lambda: False, "written": lambda: True}
    lines = []
    for item in args.sizes.split(","):
        n_partons, n_events = map(int, item.split(":"))
        p3 = jnp.asarray(make_events(n_events, n_partons, 1)[..., 1:], dtype)
        for chunk in map(int, args.chunks.split(",")):
            signs = {}
            for name, choice in written.items():
                _thrust._written_out = choice  # this process only: traced below
                fn = jax.jit(lambda x: jax.lax.map(jax.vmap(_thrust._thrust_signs_generic), x.reshape(-1, chunk, n_partons, 3)))
                start = time.perf_counter()
                signs[name] = np.asarray(jax.block_until_ready(fn(p3))[0])
                first = time.perf_counter() - start
                runs = []
                for _ in range(3):
                    start = time.perf_counter()
                    jax.block_until_ready(fn(p3))
                    runs.append(time.perf_counter() - start)
                line = {"device": _devices.device_label(), "dtype": dtype, "partons": n_partons, "events": n_events,
                        "chunk": chunk, "variant": name, "first_s": round(first, 3), "steady_s": round(min(runs), 5)}
                if name == "written":
                    line["same_signs"] = bool(np.array_equal(signs["matmul"], signs["written"]))
                print(json.dumps(line), flush=True)
                lines.append(line)
    if args.out:
        with args.out.open("a") as f:
            f.writelines(json.dumps(line) + "\n" for line in lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
