"""What the jump partners cost: d⟨1−T⟩/dα_s (forward mode, weighted, with thrust)
through `shower.realize_with_jumps` against the same derivative through
`shower.realize` alone (layout fixed, biased by +3.7 % at α_s = 0.118), in the same run.

Both start from the same layout (`shower.layout`, not timed: it is common to both).
The partners' host step (`shower.jump_partners`: the near pairs, the commute filter,
the exchanged steps, gathers) is timed on its own and counted in the partners' rate. Thrust
per multiplicity bucket (`observables.MultiplicityBuckets`), float64, the default
backend's devices.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from _harness import time_jax, time_python


def run(sizes: tuple[int, ...] | None = None, repeats: int = 3, seed: int = 20261126) -> dict[str, Any]:
    """Default sizes: 10⁴ and 10⁵ events on a CPU, 10⁵ and 10⁶ on an accelerator."""
    jax.config.update("jax_enable_x64", True)
    if sizes is None:
        sizes = (10_000, 100_000) if jax.default_backend() == "cpu" else (100_000, 1_000_000)
    from diffhep import observables, shower
    from diffhep._devices import n_shards

    def tau_fn(p, m):
        return 1.0 - observables.thrust(p, m)

    def weighted_mean(events, buckets):
        tau = buckets.apply(tau_fn, events.momenta, events.mask)
        return jnp.sum(events.weights * tau) / jnp.sum(events.weights)

    def with_alpha(base, a):
        return eqx.tree_at(lambda m: m.alpha_s, base, a)

    @eqx.filter_jit
    def plain(a, lay, base, buckets):
        f = lambda a: weighted_mean(shower.realize(lay, with_alpha(base, a))[0], buckets)  # noqa: E731
        return jax.jvp(f, (a,), (jnp.ones_like(a),))

    @eqx.filter_jit
    def jumps(a, lay, partners, base, buckets):
        f = lambda a: weighted_mean(shower.realize_with_jumps(lay, partners, with_alpha(base, a))[0], buckets)  # noqa: E731
        return jax.jvp(f, (a,), (jnp.ones_like(a),))

    model = shower.DiscreteQCD(alpha_s=0.118)
    entries = []
    for n in sizes:
        lay = shower.layout(jax.random.key(seed), model, n)
        host = time_python(lambda: shower.jump_partners(lay, model), repeats)
        partners = host.pop("output")
        mask = partners.join(lay.mask, partners.layout.mask)
        b_plain = observables.MultiplicityBuckets(lay.mask, shards=n_shards(n))
        b_joined = observables.MultiplicityBuckets(mask, shards=n_shards(mask.shape[0]))
        t_plain = time_jax(plain, model.alpha_s, lay, model, b_plain, repeats=repeats)
        t_jumps = time_jax(jumps, model.alpha_s, lay, partners, model, b_joined, repeats=repeats)
        (v0, d0), (v1, d1) = t_plain.pop("output"), t_jumps.pop("output")
        total = t_jumps["steady_s"] + host["steady_s"]
        entries.append(
            {
                "n_events": n,
                "partners": int(partners.live.sum()),
                "partner_slots": partners.n_partners,
                "jump_partners_host": host,
                "realize_jvp": {**t_plain, "events_per_s": n / t_plain["steady_s"]},
                "realize_with_jumps_jvp": {**t_jumps, "events_per_s": n / t_jumps["steady_s"]},
                "events_per_s_with_partner_step": n / total,
                "cost_ratio": total / t_plain["steady_s"],
                "mean_1_minus_T": [float(v0), float(v1)],
                "d_mean_1_minus_T_d_alpha_s": {"realize": float(d0), "realize_with_jumps": float(d1)},
            }
        )
        print(
            f"n={n}: {int(partners.live.sum())} partners; realize JVP {t_plain['steady_s']:.3f} s, "
            f"with jumps {t_jumps['steady_s']:.3f} s + host {host['steady_s']:.3f} s "
            f"({total / t_plain['steady_s']:.2f}x); d<1-T>/dα_s {float(d0):.4f} -> {float(d1):.4f}",
            flush=True,
        )
    last = entries[-1]
    return {
        "settings": {
            "sizes": list(sizes),
            "repeats": repeats,
            "seed": seed,
            "alpha_s": 0.118,
            "window": float(partners.window),
            "observable": "weighted <1-T>, thrust per multiplicity bucket, float64, jax.jvp in alpha_s",
            "timing": "first call = compile + run; steady = median of further calls (block_until_ready)",
        },
        "entries": entries,
        "summary": {
            "diffhep_events_per_s": last["events_per_s_with_partner_step"],
            "diffhep_first_call_s": last["realize_with_jumps_jvp"]["first_call_s"],
            "diffhep_compile_s": last["realize_with_jumps_jvp"]["first_call_s"] - last["realize_with_jumps_jvp"]["steady_s"],
            "peer": "diffhep realize JVP without partners (same layout, same run)",
            "peer_events_per_s": last["realize_jvp"]["events_per_s"],
            "ratio": 1.0 / last["cost_ratio"],
        },
    }
