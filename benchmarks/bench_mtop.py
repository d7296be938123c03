"""The top-mass likelihood (`diffhep fit-mtop`): events/s of −ln L(m_t) and of its
derivatives, compile and run timed apart.

For each batch of pseudo-data events (g g → t t̄ → 6 jets at 13 TeV, m_t = 172.5 GeV,
the default `MtopConfig`: 12 jet assignments × `n_int` integration points per event):

- `value`: `MtopLikelihood.nll(m_t)`, the whole negative log-likelihood;
- `derivs`: `MtopLikelihood.nll_derivs(m_t)`, −ln L with d/dm_t and d²/dm_t²
  (forward over forward mode through the ME, the phase-space map and the transfer
  function), which is what each fit step evaluates.

First call = compile + run; steady state = median of `repeats` further calls, each
with `block_until_ready`. No peer computes this likelihood (MadWeight and MoMEMta are
not packaged for Python); on a GPU the comparison is this benchmark's CPU result
(`mtop-cpu.json`), when there is one.

    python benchmarks/run.py mtop                               # -> results/mtop-<platform>.json
    python benchmarks/bench_mtop.py --pdf NNPDF31_lo_as_0118_0000.dat --sizes 1000,10000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run(sizes: tuple[int, ...] | None = None, repeats: int = 3, pdf: str | None = None, seed: int = 20261126) -> dict[str, Any]:
    import jax

    jax.config.update("jax_enable_x64", True)  # this benchmark's process only
    import jax.numpy as jnp

    sys.path.insert(0, str(HERE))
    from _harness import time_jax

    from diffhep._devices import work_sizes
    from diffhep.fit._mtop import MtopConfig, MtopLikelihood, _ctx, generate_pseudo_data
    from diffhep.pdf import PDF

    accelerator = jax.default_backend() != "cpu"
    if sizes is None:
        sizes = (1_000, 10_000) if accelerator else (100, 300)
    cfg = MtopConfig()
    ctx = _ctx(cfg, pdf=None if pdf is None else PDF.load(pdf))
    key = jax.random.key(seed)
    data = generate_pseudo_data(jax.random.fold_in(key, 1), 172.5, max(sizes), cfg, ctx)
    mt = jnp.asarray(172.5, jnp.float64)
    rows = []
    for n in sizes:
        lik = MtopLikelihood(data.jets[:n], cfg, ctx, jax.random.fold_in(key, 2))
        for mode, fn in (("value", lik.nll), ("derivs", lik.nll_derivs)):
            t = time_jax(fn, mt, repeats=repeats)
            out = t.pop("output")
            values = jnp.stack(jax.tree.leaves(out)) if mode == "derivs" else out
            if not bool(jnp.all(jnp.isfinite(values))):
                raise AssertionError(f"non-finite likelihood at n = {n} ({mode})")
            rows.append(
                {
                    "mode": mode,
                    "n_events": n,
                    **t,
                    "compile_s": t["first_call_s"] - t["steady_s"],
                    "events_per_s": n / t["steady_s"],
                }
            )
            r = rows[-1]
            print(f"  n={n} {mode}: first {r['first_call_s']:.2f} s, {r['events_per_s']:.4g} events/s", flush=True)

    def best(mode: str) -> dict[str, Any]:
        return max((r for r in rows if r["mode"] == mode), key=lambda r: r["events_per_s"])

    peer_name, peer_rate = "none (no other code computes this likelihood)", None
    cpu_file = HERE / "results" / "mtop-cpu.json"
    if accelerator and cpu_file.is_file():
        cpu = json.loads(cpu_file.read_text())
        peer_name = f"diffhep on the CPU ({cpu['environment']['cpu_model']}, {cpu['environment']['date'][:10]})"
        peer_rate = cpu["summary"]["diffhep_events_per_s"]
    head = best("derivs")
    return {
        "settings": {
            "process": "g g > t t~ > b u d~ b~ d u~ at 13 TeV, analytic production |M|², MtopConfig defaults",
            "n_int": cfg.n_int,
            "jet_assignments": 12,
            "n_norm": cfg.n_norm,
            "mt_GeV": 172.5,
            "repeats": repeats,
            "seed": seed,
            "events_per_map_step": work_sizes().mtop_batch,
        },
        "rows": rows,
        "summary": {
            "diffhep_events_per_s": head["events_per_s"],
            "diffhep_first_call_s": head["first_call_s"],
            "diffhep_compile_s": head["compile_s"],
            "diffhep_headline": f"value + d/dm_t + d²/dm_t², n={head['n_events']}",
            "value_events_per_s": best("value")["events_per_s"],
            "peer": peer_name,
            "peer_events_per_s": peer_rate,
            "ratio": None if peer_rate is None else head["events_per_s"] / peer_rate,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated event counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pdf", help="lhagrid1 file or set name (default: NNPDF3.1 LO from pythia8mc)")
    parser.add_argument("--out", help="also copy the result JSON into this folder")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from _harness import write_result

    sizes = tuple(int(float(s)) for s in args.sizes.split(",")) if args.sizes else None
    path = write_result("mtop", run(sizes, args.repeats, args.pdf))
    print(f"-> {path}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / path.name).write_bytes(path.read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
