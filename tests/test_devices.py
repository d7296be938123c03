"""Event batches split over several devices (`diffhep._devices`, `jax.shard_map`)
give the events and templates of one device.

The split needs several XLA devices, which a process fixes when JAX starts: the
sharded side runs in a subprocess with `--xla_force_host_platform_device_count=2`
(two CPU devices), the reference here on this process's one device.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from conftest import cpu_devices_env
from diffhep import observables, shower
from diffhep.fit._template import ShowerTemplate

N = 600
EDGES = np.linspace(0.0, 0.3, 16)

_SCRIPT = textwrap.dedent(
    f"""
    import json, sys
    import equinox as eqx, jax, jax.numpy as jnp, jax.random as jr, numpy as np
    jax.config.update("jax_enable_x64", True)
    from diffhep import shower
    from diffhep.fit._template import ShowerTemplate
    assert len(jax.devices()) == 2, jax.devices()
    m = shower.DiscreteQCD()
    lay = shower.layout(jr.key(5), m, {N})
    ev, _ = shower.realize(lay, m)
    assert len(ev.momenta.sharding.device_set) == 2
    t = ShowerTemplate("thrust", np.asarray({EDGES.tolist()}), {N}, jr.key(6), m)
    f, df, var, _ = t.predict(0.118)
    tj = ShowerTemplate("thrust", np.asarray({EDGES.tolist()}), {N}, jr.key(6), m, jumps=True)
    fj, dfj, _, _ = tj.predict(0.118)
    partners = shower.jump_partners(lay, m)
    def weights(a):
        return shower.realize_with_jumps(lay, partners, eqx.tree_at(lambda x: x.alpha_s, m, a))[0].weights
    hlo = jax.jit(lambda a: jax.jvp(weights, (a,), (jnp.ones_like(a),))).lower(m.alpha_s).compile().as_text()
    collectives = [op for op in ("all-reduce", "all-gather", "all-to-all", "collective-permute", "reduce-scatter")
                   if op + "(" in hlo or op + "-start(" in hlo]
    # 601 events: the devices do not divide them, so they run on one device, and so
    # must their partners (`jump_partners` pads their count to one the devices do not
    # divide either).
    # The device's pair selection (an accelerator's) on two shares equals NumPy's.
    from diffhep.shower import _jumps
    pairs, counts = _jumps._pairs_and_counts(_jumps._near_pairs(lay, 0.1), _jumps._commuting(lay.steps))
    size = int(np.asarray(counts).max()) + 5
    on_device = _jumps._select_pairs(pairs, jnp.arange(2, dtype=jnp.int32) * ({N} // 2), size)
    selection_equal = all(np.array_equal(np.asarray(a), b) for a, b in
                          zip(on_device, _jumps._select_pairs_host(np.asarray(pairs), 2, size)))
    lay_odd = shower.layout(jr.key(7), m, 601)
    partners_odd = shower.jump_partners(lay_odd, m)
    np.savez(sys.argv[1], p=np.asarray(ev.momenta), w=np.asarray(ev.weights), v=np.asarray(lay.steps.valid),
             f=f, df=df, var=var, shards=t._arrays(0.118)[1].shards, fj=fj, dfj=dfj,
             partner_shards=len(partners.first.sharding.device_set), collectives=len(collectives),
             odd_partners=partners_odd.n_partners, odd_live=int(partners_odd.live.sum()),
             odd_split=partners_odd.n_partners % len(jax.devices()) == 0, selection_equal=selection_equal,
             selection_counts=np.asarray(counts))
    """
)


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("devices") / "sharded.npz"
    subprocess.run([sys.executable, "-c", _SCRIPT, str(out)], check=True, env=cpu_devices_env(2), timeout=600)
    return np.load(out)


def test_sharded_shower_equals_one_device(two_devices):
    """Two devices, each showering its half of the events: the same layout, momenta
    to 1e-11 √s and weights to 1e-12 (each event is computed by the same kernel; only
    op fusion may differ, and its round-off grows through up to 30 boosts in nearly
    collinear dipoles, as in test_shower's sorted-chunk test: measured with the suite's
    unoptimised XLA code, 2 of 62 400 components above 1e-12 √s, largest 1.1e-12 √s)."""
    m = shower.DiscreteQCD()
    lay = shower.layout(jr.key(5), m, N)
    ev, _ = shower.realize(lay, m)
    assert np.array_equal(np.asarray(lay.steps.valid), two_devices["v"])
    np.testing.assert_allclose(two_devices["p"], np.asarray(ev.momenta), rtol=0, atol=1e-11 * shower.MZ)
    np.testing.assert_allclose(two_devices["w"], np.asarray(ev.weights), rtol=1e-12)


def test_sharded_template_equals_one_device(two_devices):
    """The α_s template (layout, realize JVP, thrust per multiplicity bucket and
    device, soft histogram) on two devices: fractions to 1e-14, their α_s derivative
    to 1e-9 of its largest bin (sums over events run in another order; measured 3e-11
    at 4000 events)."""
    assert int(two_devices["shards"]) == 2
    t = ShowerTemplate("thrust", EDGES, N, jr.key(6), shower.DiscreteQCD())
    f, df, var, _ = t.predict(0.118)
    np.testing.assert_allclose(two_devices["f"], f, rtol=0, atol=1e-14)
    np.testing.assert_allclose(two_devices["df"], df, rtol=0, atol=1e-9 * np.abs(df).max())
    np.testing.assert_allclose(two_devices["var"], var, rtol=1e-10, atol=1e-20)


def test_sharded_jump_partners(two_devices):
    """The template with jump partners on two devices equals one device's (the same
    tolerances), each device's partners are its own events', and `realize_with_jumps`
    (and its derivative) runs without any communication between devices: collectives
    between XLA's CPU devices stalled past their 40 s limit and aborted a 2-core
    `fit-alphas --jumps`."""
    assert int(two_devices["partner_shards"]) == 2
    assert int(two_devices["collectives"]) == 0
    # The device's pair selection per share (an accelerator's path) equals NumPy's.
    assert bool(two_devices["selection_equal"]) and two_devices["selection_counts"].shape == (2,)
    t = ShowerTemplate("thrust", EDGES, N, jr.key(6), shower.DiscreteQCD(), jumps=True)
    f, df, _, _ = t.predict(0.118)
    np.testing.assert_allclose(two_devices["fj"], f, rtol=0, atol=1e-14)
    np.testing.assert_allclose(two_devices["dfj"], df, rtol=0, atol=1e-9 * np.abs(df).max())
    plain = ShowerTemplate("thrust", EDGES, N, jr.key(6), shower.DiscreteQCD()).predict(0.118)[1]
    assert np.abs(df - plain).max() > 1e-3 * np.abs(df).max()  # the partners do move it


def test_unsharded_events_keep_their_partners_unsharded(two_devices):
    """601 events on two devices run unsplit; their partners' padded count is made one
    the devices do not divide, so that `over_events` keeps them unsplit too, with the
    events (split partners of unsplit events would need communication in
    `realize_with_jumps`); the live partners are one device's."""
    m = shower.DiscreteQCD()
    partners = shower.jump_partners(shower.layout(jr.key(7), m, 601), m)
    assert int(two_devices["odd_live"]) == int(partners.live.sum()) > 0
    assert not bool(two_devices["odd_split"])
    # One device pads to a multiple of 64; two add the one slot.
    assert int(two_devices["odd_partners"]) == partners.n_partners + 1


def test_cli_sets_cpu_devices():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    run = lambda *a: subprocess.run([sys.executable, "-m", "diffhep", *a, "info"], env=env, capture_output=True, text=True)  # noqa: E731
    two = run("--cpu-devices", "2")
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("device ") == 2
    one = run("--cpu-devices", "1")
    assert one.stdout.count("device ") == 1
    bad = run("--cpu-devices", "-1")
    assert bad.returncode == 2 and "--cpu-devices must be >= 0" in bad.stderr


def test_buckets_shard_errors():
    mask = np.ones((10, 4), bool)
    with pytest.raises(ValueError, match="shards=3 must be >= 1 and divide the 10 events"):
        observables.MultiplicityBuckets(mask, shards=3)
    b = observables.MultiplicityBuckets(mask, shards=2)
    assert b.rows == {4: 8}  # 5 events per share, rounded up to 8 rows
    with pytest.raises(ValueError, match="built for 2 shares, but the events are split over 1 device"):
        b.apply(lambda p, m: jnp.sum(p[..., 0], axis=-1), jnp.ones((10, 4, 4)), mask)


def test_work_sizes_per_backend(monkeypatch, request):
    # The CPU keeps the chunk sizes the kernels were tuned with, cut for O(n³) kernels
    # to ≤ cache_elements / n³ events (a power of two, at least 8); an accelerator
    # takes 32x larger event-shape steps, capped at ≈ 2²⁸ elements of O(n³)
    # intermediates.
    from diffhep import _devices
    from diffhep.observables import thrust

    if request.config.getoption("--accelerator-sizes"):
        pytest.skip("--accelerator-sizes replaces the CPU's sizes")
    on_cpu = jax.default_backend() == "cpu"
    assert _devices.work_sizes() == (_devices._CPU_SIZES if on_cpu else _devices._ACCELERATOR_SIZES)
    monkeypatch.setattr(_devices, "work_sizes", lambda: _devices._CPU_SIZES)  # also on a GPU
    assert _devices.observable_chunk(512, 24) == 512
    assert _devices.observable_chunk(512, 8, 2**16) == 128
    assert _devices.observable_chunk(512, 12, 2**16) == 32  # 2¹⁶ / 12³ = 37.9
    assert _devices.observable_chunk(512, 24, 2**16) == 8  # 4.7, at least 8
    assert _devices.observable_chunk(512, 2, 2**16) == 512  # never above the kernel's
    assert _devices.observable_chunk(0, 24, 2**16) == 0
    monkeypatch.setattr(_devices, "work_sizes", lambda: _devices._ACCELERATOR_SIZES)
    assert _devices.observable_chunk(512, 24) == 512 * 32
    assert _devices.observable_chunk(512, 24, 2**16) == 512 * 32  # no cache bound
    assert _devices.observable_chunk(512, 64) == 2**28 // 64**3
    assert _devices.observable_chunk(512, 256) == 512  # never below the CPU's
    assert _devices.observable_chunk(0, 24) == 0  # 0 = no chunking, everywhere
    # Results do not depend on the step size: 600 events of 12 slots in one step vs
    # 19 steps of 32 (the last one padded).
    p = np.random.default_rng(3).normal(size=(600, 12, 4))
    p[..., 0] = np.linalg.norm(p[..., 1:], axis=-1)
    big = np.asarray(thrust(p))
    monkeypatch.setattr(_devices, "work_sizes", lambda: _devices._CPU_SIZES)
    np.testing.assert_allclose(big, np.asarray(thrust(p)), rtol=1e-14)
