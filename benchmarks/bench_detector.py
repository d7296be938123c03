"""Benchmark: the toy detector response (tracks + clusters, and the calorimeter image)
on showered events, against a NumPy reference of the same formulas with the same ε.

    python benchmarks/bench_detector.py   # -> benchmarks/results/detector-<platform>.json
"""

from __future__ import annotations

import math

import jax

jax.config.update("jax_enable_x64", True)  # set by the benchmark, never by the library

import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402
from _harness import time_jax, time_python, write_result  # noqa: E402
from scipy.special import gammainc  # noqa: E402

from diffhep import detector, shower  # noqa: E402


def numpy_reference(p: np.ndarray, mask: np.ndarray, eps, d: detector.DetectorParams) -> np.ndarray:
    """Energy-flow objects `(n, cap, 4)` from the formulas in `diffhep.detector`, in NumPy."""
    f = d.charged_fraction
    b, ll, sx, x0 = float(d.b_field), float(d.lever_arm), float(d.hit_resolution), float(d.material)
    pt = np.hypot(p[..., 1], p[..., 2])
    mag = np.linalg.norm(p[..., 1:], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.arctanh(np.clip(np.where(mag > 0, p[..., 3] / np.where(mag > 0, mag, 1), 0), -1 + 1e-12, 1 - 1e-12))
    phi = np.where(pt > 0, np.arctan2(p[..., 2], p[..., 1]), 0.0)
    x = x0 * np.cosh(eta)
    meas = sx * f * pt / (0.3 * b * ll**2) * math.sqrt(720 / (d.n_layers + 4))
    ms = 0.0136 / (0.3 * b * ll) * np.sqrt(1.43 * x) * (1 + 0.038 * np.log(x))
    scale = 1 + np.hypot(meas, ms) * eps.track
    tracks3 = f * p[..., 1:] * scale[..., None]
    sig = lambda z, c, s: 1 / (1 + np.exp(-(z - c) / s))  # noqa: E731
    w_t = sig(float(d.eta_max) - np.abs(eta), 0, d.eta_slope) * sig(f * pt * scale, 0.15 * b * ll, d.energy_slope)
    e_n = (1 - f) * p[..., 0]
    r = ll + d.calo_gap
    rm = 9.327e-3 / r
    a_st = 0.027 * math.sqrt(d.active_thickness_mm / float(d.sampling_fraction))
    t_max = np.log(np.maximum(e_n, 1e-300) / 7.97e-3) + 0.5
    shape = 1 + 0.5 * np.logaddexp(0, 4 * np.where(e_n > 0, t_max, -10.5)) / 4
    leak = 1 - gammainc(shape, 0.5 * float(d.calo_depth))
    cst = np.hypot(d.constant_term, leak)
    cell = float(d.cell_size)
    noise = d.cell_noise * math.sqrt(1 + math.pi * (2 * rm) ** 2 / cell**2)
    e = np.maximum(e_n, 1e-3)
    e_reco = e_n * (1 + np.sqrt(a_st**2 / e + cst**2 + (noise / e) ** 2) * eps.energy)
    s_ang = np.sqrt(cell**2 / 12 + rm**2 / e)
    eta_c, phi_c = eta + s_ang * eps.eta, phi + s_ang * eps.phi
    w_c = sig(float(d.eta_max) - np.abs(eta_c), 0, d.eta_slope) * sig(e_reco, d.noise_sigmas * noise, d.energy_slope)
    st = 1 / np.cosh(eta_c)
    clusters = np.stack([e_reco, e_reco * st * np.cos(phi_c), e_reco * st * np.sin(phi_c), e_reco * np.tanh(eta_c)], -1)
    tracks = np.concatenate([np.linalg.norm(tracks3, axis=-1)[..., None], tracks3], -1)
    m = mask[..., None]
    return np.where(m, tracks * w_t[..., None] + clusters * w_c[..., None], 0.0)


def run(n_events: int = 20_000, seed: int = 1, repeats: int = 5) -> dict:
    model = shower.DiscreteQCD()
    ev, _ = shower.simulate(jr.key(seed), model, n_events)
    d = detector.DetectorParams()
    noise = detector.draw_noise(jr.key(seed + 1), ev.n_events, ev.capacity)
    flow_fn = jax.jit(lambda q: detector.respond_with_noise(noise, ev, q).energy_flow())
    ours = time_jax(flow_fn, d, repeats=repeats)
    image_fn = jax.jit(lambda q: detector.respond_with_noise(noise, ev, q, image=(64, 64, 3.0)).image)
    img = time_jax(image_fn, d, repeats=repeats)
    grad_fn = jax.jit(jax.grad(lambda q: jnp.sum(detector.respond_with_noise(noise, ev, q).energy_flow()[..., 0])))
    grad = time_jax(grad_fn, d, repeats=repeats)
    p, mask = np.asarray(ev.momenta), np.asarray(ev.mask)
    eps = jax.tree.map(np.asarray, noise)
    peer = time_python(lambda: numpy_reference(p, mask, eps, d), repeats=3)
    dev = float(np.max(np.abs(np.asarray(ours.pop("output")) - peer.pop("output"))))
    if dev > 1e-8:
        raise AssertionError(f"diffhep and the NumPy reference differ by {dev} GeV")
    img.pop("output")
    grad.pop("output")
    rate = n_events / ours["steady_s"]
    peer_rate = n_events / peer["steady_s"]
    return {
        "settings": {"n_events": n_events, "capacity": ev.capacity, "seed": seed, "dtype": "float64",
                     "peer": "NumPy reference of the same formulas, same ε (tracks + clusters)",
                     "image": [64, 64, 3.0]},
        "diffhep": {**ours, "events_per_s": rate},
        "diffhep_image": {**img, "events_per_s": n_events / img["steady_s"]},
        "diffhep_grad": {**grad, "events_per_s": n_events / grad["steady_s"]},
        "numpy": {**peer, "events_per_s": peer_rate},
        "max_abs_deviation_gev": dev,
        "summary": {
            "diffhep_events_per_s": rate,
            "diffhep_compile_s": ours["first_call_s"] - ours["steady_s"],
            "peer": "NumPy reference",
            "peer_events_per_s": peer_rate,
            "ratio": rate / peer_rate,
        },
    }


if __name__ == "__main__":
    path = write_result("detector", run())
    print(f"wrote {path}")
