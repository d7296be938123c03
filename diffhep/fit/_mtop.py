"""The top-mass fit: a matrix-element-method likelihood maximised by gradient descent.

**Model** (pseudo-data and likelihood use the same one). g g → t t̄ → (b u d̄)(b̄ d ū)
in pp collisions at √s = 13 TeV, LO, gluon PDFs of NNPDF3.1 LO at μ_F = μ_R = 173 GeV
(fixed, so that m_t enters only through the top propagators and the ME):

    |M|² = |M_gg→tt̄(p_t, p_t̄; MT = m_t)|² · ∏_{t, t̄} D / ((s_t − m_t²)² + m_t²Γ_t²),
    D = 6 g_w⁴ ½[(p_t·p_d̄)(p_b·p_u) + (p_t·p_u)(p_b·p_d̄)] / ((s_W − M_W²)² + M_W²Γ_W²),

the production |M|² of g g → t t̄ at α_s = one-loop α_s(173 GeV), Breit–Wigner tops and
Ws, and spin-averaged t → b W → b q q̄′ decays (2g_w⁴(p_t·p_d̄)(p_b·p_u)/|D_W|² is the
V−A result averaged over the top spin, ×3 for the W → q q̄′ colours, here averaged
over u ↔ d̄ because light jets carry no flavour; in the narrow-width limit σ → σ_gg→tt̄
× (Γ_t→bud̄/Γ_t)²). The production |M|² is either `diffhep.me`'s HELAS
``g g > t t~`` on the off-shell top momenta (``production="helas"``) or, the default
for speed on a CPU, the Combridge formula (PHYSICS.md) written with the same
invariants, τ₁ = (m_t² − (k₁ − p_t)²)/ŝ, τ₂ = (m_t² − (k₁ − p_t̄)²)/ŝ, ρ = 4m_t²/ŝ
(``production="analytic"``): both agree exactly on shell (tested) and differ only
off shell, where neither is gauge invariant. Spin correlations between t and t̄ are therefore *not* modelled. The full
decay-chain ME ``g g > t t~, t > b u d~, t~ > b~ d u~`` exists in `diffhep.me` but
costs ~100× more per point on a CPU; it is the natural upgrade on a GPU. Γ_t =
1.4915 GeV, M_W = 80.419 GeV, Γ_W = 2.0476 GeV (MG5 sm card) are held fixed; b quarks
are massless. A toy initial-state radiation gives the t t̄ system a transverse kick,
a pure boost with k_x, k_y ~ N(0, σ_k²), σ_k = 25 GeV (without it the six true
energies would be tied by two p_T-balance constraints).

**Detector.** Jet directions are the parton directions (exact); jet energies are
smeared with a Gaussian of σ_E = √(a²E + b²E²), a = 1.0 √GeV (100%/√E) and b = 0.05
(5%): E_obs ~ N(E, σ_E(E)). Jets are massless. Both b jets are tagged (b vs b̄ is not
known); the four light jets are unlabelled. Events with a jet of E_obs < 1 GeV are
dropped (a ~10⁻⁴ effect, ignored in the normalisation).

**Likelihood** (MadWeight-style change of variables). For each event,

    L(m_t) = (1/σ(m_t)) Σ_perm ∫ ∏_i dE_i W(E_i^obs | E_i) ρ(E_1 … E_6; m_t),

ρ the model density in the true energies at the observed directions (PDFs, |M|²,
the kick's Gaussian, the phase-space factors ∏ E_i/(2(2π)³) and the Jacobian of
(x₁, x₂, k) ↦ P). The six energies are parametrised by the four resonance masses²
(s_W⁺, s_t, s_W⁻, s_t̄) and the two ratios ln(E_u/E_d̄), ln(E_d/E_ū) (Gaussian around
the observed ratio). Each mass² is drawn from a two-channel mixture (balance
heuristic, ½ each, channels fixed per point so that every combination has the same
number of points): a Breit–Wigner map (`diffhep.phasespace.bw_map`) at the *current*
m_t or M_W, or a proposal that follows the observed jets (needed for the far
off-shell events, a few per cent of all, that a BW-only proposal misses). Then E_u E_d̄ = s_W/(2(1 − cos θ_ud̄)) and E_b = (s_t − s_W)/(2(E_W − n̂_b·p⃗_W)).
The integral uses one fixed set of scrambled-Sobol points, rotated by an independent
random shift per event (so that integration errors do not correlate across events),
for all permutations and every m_t (common random numbers), so −ln L is a smooth
function of m_t. The sum runs
over the 12 assignments of jets (which b jet is the b, which light pair comes from the
W⁺); swapping the two jets of a W pair leaves the model unchanged and gives a factor 4.
σ(m_t) is the model's total cross section (no cuts), by QMC with the decay-chain
phase-space generator `ttbar_decay_chain`. Derivatives in m_t flow through the ME,
the Breit–Wigners, the phase-space map and the transfer function.

**Pythia pseudo-data** (`pythia_pseudo_data`, `--pythia`). Pythia 8 generates the six
partons instead of the model, at the model's settings where Pythia has them
(`diffhep.fit._pythia.ttbar_settings`: g g → t t̄ only, the same NNPDF3.1 LO grid,
fixed μ = 173 GeV, the model's masses and widths, massless quarks, no showers); the
kick and the jet smearing are the model's. What stays Pythia's own is its Breit–Wigner
line shapes and its top-decay angular weights. The fit then measures how far the
model's likelihood is from a generator we did not write (README: the bias found).

**Optimiser.** Forward-over-forward mode gives −ln L, its gradient g and curvature h in
one pass; `optax` takes the Newton step g/h (clipped to 3 GeV). It stops when the step
is below 0.02 of the curvature uncertainty h^{−1/2}.

**Uncertainty.** `mt_err` = h^{−1/2} (the curvature of −ln L), checked by a likelihood
scan (a parabola through −ln L at ±2.5σ: `scan_err_lo/hi`). Each event's integral uses
`n_int` points per jet assignment, and too few make the curvature error too small: the
log of a noisy integral is sharper and scatters (closure pull width with the curvature
error: ≈ 2 at n_int = 16, 1.32 at 32, 0.86 ± 0.11 at 128, the default). The sandwich
error √(Σ(s_i − s̄)²)/h from the per-event scores s_i (`mt_err_sandwich`) is reported
beside it as a cross-check (0.80 ± 0.10 at 128); taking the larger of the two, as
earlier versions did, widens the errors of a well-integrated likelihood (0.79). At
2000 events (44 pseudo-experiments, one Newton step each) the widths are 1.20 ± 0.13
(curvature) and 1.13 ± 0.12 (sandwich), σ = 0.148 GeV.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._precision import FULL

#: Allowed top masses (GeV) for the fit, the truth and the starting point.
MT_RANGE = (100.0, 250.0)
#: Jets softer than this (observed energy, GeV) drop the event.
E_OBS_MIN = 1.0
_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class MtopConfig:
    """Settings of the top-mass model, detector and likelihood integration.

    Energies in GeV. `res_stochastic` is a in σ_E = √(a²E + b²E²) (GeV^½), `res_constant`
    is b; `sigma_kick` the width of each transverse component of the toy-ISR kick;
    `mu` the fixed PDF/α_s scale; `sqrt_s_min` the lowest partonic √ŝ generated (a
    ~10⁻⁵ effect for m_t ≥ 150 GeV); `n_int` integration points per event and
    permutation; `n_norm` points for σ(m_t).
    """

    sqrt_s: float = 13000.0
    mu: float = 173.0
    wt: float = 1.4915
    mw: float = 80.41900244575616
    ww: float = 2.0476
    sigma_kick: float = 25.0
    res_stochastic: float = 1.0
    res_constant: float = 0.05
    sqrt_s_min: float = 200.0
    n_int: int = 128
    n_norm: int = 2**14
    production: str = "analytic"
    ratio_inflation: float = 1.5
    s_w_max: float = 250.0**2
    s_t_max: float = 600.0**2


def check_mt(name: str, value: float) -> float:
    """`ValueError` naming `value` unless it is a top mass in `MT_RANGE`."""
    lo, hi = MT_RANGE
    v = float(value)
    if not (lo <= v <= hi) or not math.isfinite(v):
        raise ValueError(f"{name} = {value} GeV is outside the allowed range [{lo:g}, {hi:g}] GeV")
    return v


def _pool_size(n_events: int) -> int:
    """Partons to generate for `n_events` events: a 1 % margin (at least 8) for the
    jet-energy threshold, which about 10⁻⁴ of events fail."""
    return n_events + max(8, n_events // 100)


def _check_request(mt: float, n_events: int) -> tuple[float, int]:
    """A pseudo-data request: the truth `mt` in `MT_RANGE` and at least one event."""
    mt = check_mt("truth mt", mt)
    if int(n_events) < 1:
        raise ValueError(f"events = {n_events} must be >= 1")
    return mt, int(n_events)


# ------------------------------------------------------------------ model pieces
def _dot(a, b):
    return a[..., 0] * b[..., 0] - jnp.sum(a[..., 1:] * b[..., 1:], axis=-1)


def _ctx(cfg: MtopConfig, pdf=None):
    """Constants shared by generation and likelihood."""
    from ..me import SMParameters
    from ..pdf import PDF, alpha_s_one_loop

    pdf = PDF.load("NNPDF31_lo_as_0118_0000") if pdf is None else pdf
    params = SMParameters.from_param_card().replace(MB=0.0)
    alpha_ratio = float(alpha_s_one_loop(cfg.mu)) / float(params.aS)
    if cfg.production not in ("analytic", "helas"):
        raise ValueError(f"production must be 'analytic' or 'helas', got {cfg.production!r}")
    return dict(
        pdf=pdf, params=params, gw4=float(params.gw) ** 4, alpha2=alpha_ratio**2, alpha_s=float(alpha_s_one_loop(cfg.mu))
    )


def combridge_gg_ttbar(k1, k2, pt, ptb, mt, alpha_s):
    """|M|²(g g → t t̄), averaged/summed as MadGraph, from the Combridge formula
    g⁴ (1/(6τ₁τ₂) − 3/8)(τ₁² + τ₂² + ρ − ρ²/(4τ₁τ₂)), τ₁ = (m² − (k₁ − p_t)²)/ŝ,
    τ₂ = (m² − (k₁ − p_t̄)²)/ŝ, ρ = 4m²/ŝ, g² = 4πα_s (PHYSICS.md). Momenta (4,) in GeV;
    differentiable in all inputs."""
    s = _dot(k1 + k2, k1 + k2)
    t = _dot(k1 - pt, k1 - pt)
    u = _dot(k1 - ptb, k1 - ptb)
    m2 = mt * mt
    tau1, tau2, rho = (m2 - t) / s, (m2 - u) / s, 4.0 * m2 / s
    g4 = (4.0 * math.pi * alpha_s) ** 2
    return g4 * (1.0 / (6.0 * tau1 * tau2) - 0.375) * (tau1**2 + tau2**2 + rho - rho**2 / (4.0 * tau1 * tau2))


def _model_me(gluons, p6, mt, cfg: MtopConfig, ctx, params_mt):
    """|M|² of the model (see module docstring) for one point. `gluons` (2, 4) and
    `p6` (6, 4) in the order (b, u, d̄, b̄, d, ū), in a frame where the gluons are
    along ±z. GeV⁻⁸."""
    from ..me import matrix_element

    b, u, dbar, bbar, d, ubar = p6
    w1, w2 = u + dbar, d + ubar
    t1, t2 = b + w1, bbar + w2
    if cfg.production == "helas":
        prod = matrix_element("g g > t t~", jnp.stack([gluons[0], gluons[1], t1, t2])[None], params_mt)[0]
        prod = prod * ctx["alpha2"]
    else:
        prod = combridge_gg_ttbar(gluons[0], gluons[1], t1, t2, mt, ctx["alpha_s"])

    def decay(t, bq, q, qbar, w):
        sym = 0.5 * (_dot(t, qbar) * _dot(bq, q) + _dot(t, q) * _dot(bq, qbar))
        sw = _dot(w, w)
        return 6.0 * ctx["gw4"] * sym / ((sw - cfg.mw**2) ** 2 + (cfg.mw * cfg.ww) ** 2)

    def bw_top(t):
        st = _dot(t, t)
        return 1.0 / ((st - mt * mt) ** 2 + (mt * cfg.wt) ** 2)

    return prod * decay(t1, b, u, dbar, w1) * bw_top(t1) * decay(t2, bbar, d, ubar, w2) * bw_top(t2)


def _gluon_pdf(pdf, x, mu):
    from ..pdf import ALL_PIDS

    return pdf.xfxQ2_all(x, mu * mu)[..., ALL_PIDS.index(21)] / x


def _point(u, mt, cfg: MtopConfig, ctx, params_mt):
    """One weighted event from 16 uniforms: (p6 in the partonic CM frame, x1, x2,
    weight in pb). Σ weights / n estimates σ(m_t)."""
    from ..pdf import GEV2_TO_PB
    from ..phasespace import ttbar_decay_chain

    s = cfg.sqrt_s**2
    log_tau_min = math.log(cfg.sqrt_s_min**2 / s)
    log_tau = (1.0 - u[0]) * log_tau_min
    tau = jnp.exp(log_tau)
    y = log_tau * (0.5 - u[1])
    jac = tau * (-log_tau_min) * (-log_tau)
    x1 = jnp.sqrt(tau) * jnp.exp(y)
    x2 = jnp.sqrt(tau) * jnp.exp(-y)
    shat = tau * s
    rs = jnp.sqrt(shat)
    p6, w6 = ttbar_decay_chain(u[2:], rs, mt, cfg.wt, cfg.mw, cfg.ww)
    half = 0.5 * rs
    zero = jnp.zeros_like(half)
    gluons = jnp.stack([jnp.stack([half, zero, zero, half]), jnp.stack([half, zero, zero, -half])])
    me = jnp.maximum(_model_me(gluons, p6, mt, cfg, ctx, params_mt), 0.0)  # the model is max(|M|², 0)
    lum = _gluon_pdf(ctx["pdf"], x1, cfg.mu) * _gluon_pdf(ctx["pdf"], x2, cfg.mu)
    return p6, x1, x2, GEV2_TO_PB * jac * lum * me * w6 / (2.0 * shat)


def _points(u, mt, cfg, ctx):
    params_mt = ctx["params"].replace(MT=mt)
    return jax.vmap(lambda uu: _point(uu, mt, cfg, ctx, params_mt))(u)


def model_sigma(u: jax.Array, mt, cfg: MtopConfig, ctx) -> tuple[jax.Array, jax.Array]:
    """σ(m_t) of the model in pb and its MC error: the mean of the `(n, 16)` points'
    weights. Differentiable in `mt` (the BW map moves with it)."""
    w = _points(u, mt, cfg, ctx)[3]
    return jnp.mean(w), jnp.std(w) / math.sqrt(w.shape[0])


# --------------------------------------------------------------- pseudo-data
@dataclass
class PseudoData:
    """Observed jets `(n, 6, 4)` (lab frame, GeV; two b-tagged jets first, then four
    light jets, each group in random order), the true partons `(n, 6, 4)` in the
    model order (b, u, d̄, b̄, d, ū), and unweighting statistics (`None` for Pythia's
    events, which Pythia unweights itself). `source`: "model" or "pythia8"."""

    jets: np.ndarray
    truth: np.ndarray
    mt: float
    n_points: int
    efficiency: float | None
    overflow_fraction: float | None
    source: str = "model"


def _sigma_e(e, cfg: MtopConfig):
    return jnp.sqrt(cfg.res_stochastic**2 * e + (cfg.res_constant * e) ** 2)


def _longitudinal(p6, x1, x2, cfg: MtopConfig):
    """Partonic-CM momenta `(6, 4)` → the lab frame before the kick: the longitudinal
    boost to rapidity ½ ln(x1/x2)."""
    from ..phasespace._common import from_rest_frame

    rs = jnp.sqrt(x1 * x2) * cfg.sqrt_s
    e0 = 0.5 * (x1 + x2) * cfg.sqrt_s
    pz = 0.5 * (x1 - x2) * cfg.sqrt_s
    zero = jnp.zeros_like(rs)
    return from_rest_frame(p6, jnp.stack([e0, zero, zero, pz]), rs)


def _kick(p6, k):
    """The toy-ISR kick of a final state `p6` `(6, 4)` with no transverse momentum: the
    pure transverse boost taking its total (E₀, 0, 0, P_z) to (√(E₀² + k²), k_x, k_y, P_z)."""
    from ..phasespace._common import from_rest_frame

    e0 = jnp.sum(p6[:, 0])
    frame = jnp.stack([jnp.sqrt(e0 * e0 + k[0] ** 2 + k[1] ** 2), k[0], k[1], jnp.zeros_like(e0)])
    return from_rest_frame(p6, frame, e0)


_GENERATORS: dict = {}


def _generator(cfg: MtopConfig, ctx: dict):
    """The jitted weighted-point generator for one configuration (compiled once)."""
    key = (cfg, id(ctx))
    if key not in _GENERATORS:
        _GENERATORS[key] = (jax.jit(lambda u, m: _points(u, m, cfg, ctx)), ctx)
    return _GENERATORS[key][0]


def generate_pseudo_data(
    key: jax.Array, mt: float, n_events: int, cfg: MtopConfig = MtopConfig(), ctx=None, chunk: int = 16384
) -> PseudoData:
    """Unweighted pseudo-data of the model at top mass `mt` (GeV): `n_events` events.

    Weighted points from `_point` (PDFs × |M|² × BW-mapped decay-chain phase space)
    are unweighted against the largest weight of the first chunk (×1.5), exactly: a
    point of weight w is kept ⌊w/w_max⌋ times plus once more with probability
    {w/w_max} (accept–reject below w_max). The rare points above w_max (counted in
    `overflow_fraction`) then enter with their full weight as repeated events; kept
    once only, they took 0.07–0.8 % of σ (depending on the first chunk) from the
    highest-weight region, a per-sample distortion.
    Then the toy-ISR kick, the energy smearing and the jet shuffling are applied. A
    Python loop runs over chunks of `chunk` points, never over events.
    """
    mt, n_events = _check_request(mt, n_events)
    ctx = _ctx(cfg) if ctx is None else ctx
    gen = _generator(cfg, ctx)
    kept_p, kept_x1, kept_x2 = [], [], []
    n_kept = n_points = n_over = 0
    w_max = None
    i = 0
    pool = _pool_size(n_events)
    while n_kept < pool:
        k_u, k_acc = jax.random.split(jax.random.fold_in(key, i))
        i += 1
        p6, x1, x2, w = (np.asarray(a) for a in gen(jax.random.uniform(k_u, (chunk, 16), dtype=jnp.float64), mt))
        if w_max is None:
            w_max = 1.5 * float(w.max())
        n_points += chunk
        n_over += int(np.sum(w > w_max))
        r = w / w_max
        copies = np.floor(r) + (np.asarray(jax.random.uniform(k_acc, (chunk,), dtype=jnp.float64)) < r - np.floor(r))
        copies = copies.astype(np.int64)
        kept_p.append(np.repeat(p6, copies, axis=0))
        kept_x1.append(np.repeat(x1, copies))
        kept_x2.append(np.repeat(x2, copies))
        n_kept += int(copies.sum())
        if i > 2000:
            raise RuntimeError(f"unweighting too slow: {n_kept} events after {n_points} points")
    p6 = np.concatenate(kept_p)
    x1 = np.concatenate(kept_x1)
    x2 = np.concatenate(kept_x2)
    long = np.asarray(jax.vmap(lambda p, a, b: _longitudinal(p, a, b, cfg))(p6, x1, x2))
    jets, truth = _detector(long, jax.random.fold_in(key, 0x5EED), n_events, cfg)
    return PseudoData(jets, truth, mt, n_points, n_kept / n_points, n_over / n_points)


def _detector(long, key, n_events, cfg) -> tuple[np.ndarray, np.ndarray]:
    """Toy-ISR kick (`_kick`), jet smearing and shuffling of lab-frame partons `long`
    `(m ≥ n_events, 6, 4)` without transverse momentum: the observed jets and true
    partons `(n_events, 6, 4)` of the first `n_events` events with every jet above
    `E_OBS_MIN` (the pool is a little larger than needed)."""
    k_kick, k_smear, k_b, k_l = jax.random.split(key, 4)
    kick = cfg.sigma_kick * np.asarray(jax.random.normal(k_kick, (long.shape[0], 2), dtype=jnp.float64))
    lab = np.asarray(jax.vmap(_kick)(jnp.asarray(long), kick))
    e = lab[..., 0]
    eps = np.asarray(jax.random.normal(k_smear, e.shape, dtype=jnp.float64))
    e_obs = e + np.asarray(_sigma_e(e, cfg)) * eps
    good = np.all(e_obs > E_OBS_MIN, axis=-1)
    if good.sum() < n_events:  # pragma: no cover - needs ~10⁴× more soft jets
        raise RuntimeError("too many events lost to the jet-energy threshold")
    direction = lab[..., 1:] / np.linalg.norm(lab[..., 1:], axis=-1, keepdims=True)
    jets = e_obs[..., None] * np.concatenate([np.ones_like(e_obs[..., None]), direction], axis=-1)
    jets, lab = jets[good][:n_events], lab[good][:n_events]
    # Shuffle: b jets (slots 0, 3) in random order first, then the light jets (1, 2, 4, 5).
    swap = np.asarray(jax.random.bernoulli(k_b, 0.5, (n_events,)))
    b_order = np.where(swap[:, None], [3, 0], [0, 3])
    l_order = np.array([1, 2, 4, 5])[np.argsort(np.asarray(jax.random.uniform(k_l, (n_events, 4))), axis=-1)]
    order = np.concatenate([b_order, l_order], axis=-1)
    return np.take_along_axis(jets, order[..., None], axis=1), lab


def pythia_pseudo_data(key: jax.Array, mt: float, n_events: int, cfg: MtopConfig = MtopConfig()) -> PseudoData:
    """Pseudo-data from Pythia 8 instead of the model: p p → t t̄ → (b u d̄)(b̄ d ū) at
    parton level with the model's settings where Pythia has them
    (`diffhep.fit._pythia.ttbar_settings`: g g → t t̄ only, NNPDF3.1 LO, μ = `cfg.mu`,
    the model's masses and widths, massless quarks), then the model's toy-ISR kick and
    jet smearing. Needs pythia8mc. The seed of Pythia is drawn from `key`."""
    from ._pythia import pythia_ttbar_partons

    mt, n_events = _check_request(mt, n_events)
    seed = int(jax.random.randint(key, (), 0, 2**30))
    pool = _pool_size(n_events)
    p6 = pythia_ttbar_partons(pool, mt, seed, cfg)
    jets, truth = _detector(p6, jax.random.fold_in(key, 0x5EED), n_events, cfg)
    return PseudoData(jets, truth, mt, pool, None, None, source="pythia8")


# ----------------------------------------------------------------- likelihood
def _permutations() -> np.ndarray:
    """`(12, 6)` jet indices for the model slots (b, u, d̄, b̄, d, ū): which b-tagged
    jet is the b, and which pair of light jets is the W⁺ (u before d̄ by jet index)."""
    rows = []
    for b in (0, 1):
        for pair in itertools.combinations((2, 3, 4, 5), 2):
            rest = tuple(j for j in (2, 3, 4, 5) if j not in pair)
            rows.append((b, pair[0], pair[1], 1 - b, rest[0], rest[1]))
    return np.asarray(rows)


PERMUTATIONS = _permutations()
#: Each listed assignment stands for 4 (the u ↔ d̄ and d ↔ ū swaps, equal in the model).
PERMUTATION_MULTIPLICITY = 4


def _log_normal_pdf(x, mean, sigma):
    return -0.5 * ((x - mean) / sigma) ** 2 - jnp.log(sigma) - 0.5 * math.log(_TWO_PI)


def _bw_log_density(s, mass, width, smin, smax):
    """log of the normalised Breit–Wigner density of `bw_map` at s ∈ [smin, smax]
    (−∞ outside)."""
    mw = mass * width
    span = jnp.arctan((smax - mass * mass) / mw) - jnp.arctan((smin - mass * mass) / mw)
    inside = (s >= smin) & (s <= smax)
    val = jnp.log(mw) - jnp.log((s - mass * mass) ** 2 + mw * mw) - jnp.log(span)
    return jnp.where(inside, val, -jnp.inf)


def _log_mix(a, b):
    """log(½ eᵃ + ½ eᵇ)."""
    return jnp.logaddexp(a, b) - math.log(2.0)


def _side(u3, chan, e_obs, n, cfg: MtopConfig, mt, s_w_lo):
    """True energies (b, q, q̄′) of one top side from 3 uniforms (s_W, ratio, s_t), and
    log of the Jacobian dE_b dE_q dE_q̄′ / du³ (1/proposal density).

    s_W and s_t each come from a two-channel mixture (½ each, balance heuristic with
    the channel fixed by `chan` (2,) ∈ {0, 1}): channel 0 is the Breit–Wigner map at
    the current mass, channel 1 follows the observed jets (log-normal in s_W around
    the observed pair mass², Gaussian in E_b around the observed b energy), so that
    far off-shell events are integrated as well as on-shell ones. `e_obs` (3,),
    `n` (3, 3) unit vectors."""
    from ..phasespace import bw_map
    from jax.scipy.special import ndtri

    one_minus_c = 1.0 - jnp.dot(n[1], n[2], precision=FULL)
    # --- s_W
    rel = jnp.sqrt(cfg.res_stochastic**2 / e_obs[1:] + cfg.res_constant**2)
    xi_w = ndtri(u3[0])
    s_bw, _ = bw_map(u3[0], cfg.mw, cfg.ww, s_w_lo, cfg.s_w_max)
    log_s_obs = jnp.log(2.0 * e_obs[1] * e_obs[2] * one_minus_c)
    sig_s = cfg.ratio_inflation * jnp.sqrt(jnp.sum(rel * rel))
    s_tf = jnp.exp(log_s_obs + sig_s * xi_w)
    s_w = jnp.where(chan[0] == 0, s_bw, s_tf)
    log_q_w = _log_mix(
        _bw_log_density(s_w, cfg.mw, cfg.ww, s_w_lo, cfg.s_w_max),
        _log_normal_pdf(jnp.log(s_w), log_s_obs, sig_s) - jnp.log(s_w),
    )
    # --- ln(E_q/E_q̄′), Gaussian around the observed ratio
    sig_r = cfg.ratio_inflation * jnp.sqrt(jnp.sum(rel * rel))
    xi = ndtri(u3[1])
    r = jnp.log(e_obs[1] / e_obs[2]) + sig_r * xi
    prod = s_w / (2.0 * one_minus_c)
    e_q = jnp.sqrt(prod * jnp.exp(r))
    e_qb = jnp.sqrt(prod * jnp.exp(-r))
    pw = e_q * n[1] + e_qb * n[2]
    ew = e_q + e_qb
    denom = 2.0 * (ew - jnp.dot(n[0], pw, precision=FULL))
    # --- s_t, i.e. E_b = (s_t − s_W)/denom
    s_t_bw, _ = bw_map(u3[2], mt, cfg.wt, s_w, cfg.s_t_max)
    sig_b = cfg.ratio_inflation * _sigma_e(e_obs[0], cfg)
    e_b_tf = e_obs[0] + sig_b * ndtri(u3[2])
    s_t = jnp.where(chan[1] == 0, s_t_bw, s_w + denom * e_b_tf)
    e_b = (s_t - s_w) / denom
    log_q_t = _log_mix(
        _bw_log_density(s_t, mt, cfg.wt, s_w, cfg.s_t_max),
        _log_normal_pdf(e_b, e_obs[0], sig_b) - jnp.log(denom),
    )
    log_jac = (
        -log_q_w
        + jnp.log(sig_r) + 0.5 * math.log(_TWO_PI) + 0.5 * xi * xi
        + jnp.log(e_q * e_qb / (2.0 * s_w))
        - log_q_t - jnp.log(denom)
    )
    return jnp.stack([e_b, e_q, e_qb]), log_jac


def _log_point(u6, chan, jets, perm, mt, cfg: MtopConfig, ctx, params_mt):
    """log of the integrand (per unit u) for one event, one permutation, one point;
    `chan` (4,) the channels of (s_W⁺, s_t, s_W⁻, s_t̄)."""
    from ..phasespace._common import to_rest_frame

    j = jets[perm]
    e_obs = j[:, 0]
    n = j[:, 1:] / e_obs[:, None]
    s_w_lo = 1e-2
    e1, lj1 = _side(u6[:3], chan[:2], e_obs[:3], n[:3], cfg, mt, s_w_lo)
    e2, lj2 = _side(u6[3:], chan[2:], e_obs[3:], n[3:], cfg, mt, s_w_lo)
    e = jnp.concatenate([e1, e2])
    p = jnp.concatenate([e[:, None], e[:, None] * n], axis=-1)
    big_p = jnp.sum(p, axis=0)
    k2 = big_p[1] ** 2 + big_p[2] ** 2
    e0 = jnp.sqrt(big_p[0] ** 2 - k2)
    rs_had = cfg.sqrt_s
    x1 = (e0 + big_p[3]) / rs_had
    x2 = (e0 - big_p[3]) / rs_had
    ok = (x1 < 1.0) & (x2 < 1.0) & (x1 > 0.0) & (x2 > 0.0) & jnp.all(e > 0) & jnp.isfinite(lj1 + lj2)
    x1s = jnp.where(ok, x1, 0.1)
    x2s = jnp.where(ok, x2, 0.1)
    shat = x1s * x2s * cfg.sqrt_s**2
    frame = jnp.stack([big_p[0], big_p[1], big_p[2], jnp.zeros_like(e0)])
    p_rest = to_rest_frame(p, frame, e0)  # undo the toy-ISR kick
    half = 0.5 * cfg.sqrt_s
    zero = jnp.zeros_like(e0)
    gluons = jnp.stack([x1s * half * jnp.stack([1.0 + zero, zero, zero, 1.0 + zero]),
                        x2s * half * jnp.stack([1.0 + zero, zero, zero, -1.0 + zero])])
    me = _model_me(gluons, p_rest, mt, cfg, ctx, params_mt)
    # Off shell the production |M|² can turn negative: the model is max(|M|², 0).
    ok = ok & (me > 0)
    me = jnp.where(ok, me, 1.0)
    lum = _gluon_pdf(ctx["pdf"], x1s, cfg.mu) * _gluon_pdf(ctx["pdf"], x2s, cfg.mu)
    es = jnp.where(ok, e, 1.0)
    sig = _sigma_e(es, cfg)
    log_tf = jnp.sum(-0.5 * ((e_obs - es) / sig) ** 2 - jnp.log(sig) - 0.5 * math.log(_TWO_PI))
    log_rho = (
        4 * math.log(_TWO_PI) + math.log(2.0 / cfg.sqrt_s**2) + jnp.log(big_p[0] / e0)
        - k2 / (2 * cfg.sigma_kick**2) - math.log(_TWO_PI * cfg.sigma_kick**2)
        + jnp.log(lum * me / (2.0 * shat))
        + jnp.sum(jnp.log(es / (2.0 * _TWO_PI**3)))
    )
    lj = jnp.where(ok, lj1 + lj2, 0.0)
    return jnp.where(ok, log_rho + log_tf + lj, -jnp.inf)


def event_log_density(jets, u_int, mt, cfg: MtopConfig, ctx, params_mt):
    """log ∫ W ρ for one event (`jets` (6, 4)), summed over jet assignments: the
    per-event log-likelihood up to −ln σ(m_t). `u_int` `(K, 6)` integration points."""
    perms = jnp.asarray(PERMUTATIONS)
    # Channel combination of point j: bits of j (balanced when K is a multiple of 16).
    chans = (np.arange(u_int.shape[0])[:, None] >> np.arange(4)[None, :]) & 1
    f = jax.vmap(jax.vmap(lambda u, c, pm: _log_point(u, c, jets, pm, mt, cfg, ctx, params_mt), (0, 0, None)), (None, None, 0))
    logs = f(u_int, jnp.asarray(chans), perms)  # (12, K)
    return jax.nn.logsumexp(logs) - math.log(u_int.shape[0]) + math.log(PERMUTATION_MULTIPLICITY)


def _per_event(mt, jets, u_int, shifts, ctx: dict, cfg: MtopConfig, batch: int):
    params_mt = ctx["params"].replace(MT=mt)

    def one(args):
        j, shift = args
        # Each event its own Cranley–Patterson rotation of the Sobol points: the
        # integration errors of different events are then independent (shared points
        # would give all events a common error that no per-event error estimate sees).
        u = jnp.clip(jnp.mod(u_int + shift[None, :], 1.0), 1e-12, 1.0 - 1e-12)
        return event_log_density(j, u, mt, cfg, ctx, params_mt)

    return jax.lax.map(one, (jets, shifts), batch_size=batch)


def _nll(mt, jets, u_int, shifts, u_norm, ctx: dict, cfg: MtopConfig, batch: int):
    sigma = jnp.mean(_points(u_norm, mt, cfg, ctx)[3])
    return -jnp.sum(_per_event(mt, jets, u_int, shifts, ctx, cfg, batch)) + jets.shape[0] * jnp.log(sigma)


def _nll_derivs(mt, jets, u_int, shifts, u_norm, ctx: dict, cfg: MtopConfig, batch: int):
    def first(m):
        return jax.jvp(lambda mm: _nll(mm, jets, u_int, shifts, u_norm, ctx, cfg, batch), (m,), (jnp.ones_like(m),))

    (v, g), (_, h) = jax.jvp(first, (mt,), (jnp.ones_like(mt),))
    return v, g, h


def _scores(mt, jets, u_int, shifts, ctx: dict, cfg: MtopConfig, batch: int):
    return jax.jvp(lambda m: _per_event(m, jets, u_int, shifts, ctx, cfg, batch), (mt,), (jnp.ones_like(mt),))[1]


# The data, the integration points and the context (PDF grid, parameters) are
# arguments, the configuration and chunk size static: new events of the same shape
# (another pseudo-experiment) reuse JAX's compilation cache.
_jit = functools.partial(jax.jit, static_argnames=("cfg", "batch"))
_nll_jit, _nll_derivs_jit, _per_event_jit, _scores_jit = map(_jit, (_nll, _nll_derivs, _per_event, _scores))


class MtopLikelihood:
    """−ln L(m_t) of a set of events, with fixed integration points (see module docs).

    `nll(mt)`: the negative log-likelihood (scalar; units of ln L). `nll_derivs(mt)` →
    (−ln L, d/dm_t, d²/dm_t²) by forward-over-forward mode. `per_event(mt)`: `(n,)`
    per-event log densities without −ln σ. Events are processed in chunks
    (`lax.map`, `batch_size` at a time; default the backend's, 8 on a CPU) to bound
    memory; the compiled functions are shared by all likelihoods with the same
    configuration and number of events.
    """

    def __init__(self, jets: np.ndarray, cfg: MtopConfig, ctx, key: jax.Array, batch_size: int | None = None):
        from .._devices import work_sizes
        from ..pdf import sobol_uniforms

        batch_size = work_sizes().mtop_batch if batch_size is None else int(batch_size)

        if cfg.n_int < 16 or cfg.n_int % 16:
            raise ValueError(f"n_int = {cfg.n_int} must be a positive multiple of 16 (two channels for each of 4 resonances)")
        self.cfg, self.ctx = cfg, ctx
        self.jets = jnp.asarray(jets, dtype=jnp.float64)
        k_int, k_norm, k_shift = jax.random.split(key, 3)
        self.u_int = sobol_uniforms(k_int, cfg.n_int, 6)
        self.u_norm = sobol_uniforms(k_norm, cfg.n_norm, 16)
        self.n_events = int(self.jets.shape[0])
        self.shifts = jax.random.uniform(k_shift, (self.n_events, 6), dtype=jnp.float64)
        self._static = dict(cfg=cfg, batch=min(batch_size, self.n_events))

    def nll(self, mt) -> jax.Array:
        mt = jnp.asarray(mt, jnp.float64)
        return _nll_jit(mt, self.jets, self.u_int, self.shifts, self.u_norm, self.ctx, **self._static)

    def nll_derivs(self, mt) -> tuple[jax.Array, jax.Array, jax.Array]:
        mt = jnp.asarray(mt, jnp.float64)
        return _nll_derivs_jit(mt, self.jets, self.u_int, self.shifts, self.u_norm, self.ctx, **self._static)

    def per_event(self, mt) -> jax.Array:
        return _per_event_jit(jnp.asarray(mt, jnp.float64), self.jets, self.u_int, self.shifts, self.ctx, **self._static)

    def sandwich_error(self, mt, grad: float, curvature: float) -> float:
        """Huber–White (sandwich) uncertainty √J / h of the m_t estimate: J = Σ (s_i − s̄)²
        over the per-event scores s_i = ∂ ln L_i/∂m_t (normalisation included), h the
        curvature of −ln L. It equals the curvature error h^{−1/2} when the likelihood
        is exact (J = h on average) and also covers the extra scatter that the finite
        integration (`n_int` points per event) adds to each event's score."""
        g_i = np.asarray(_scores_jit(jnp.asarray(mt, jnp.float64), self.jets, self.u_int, self.shifts, self.ctx, **self._static))
        dlog_sigma = (grad + g_i.sum()) / self.n_events  # from grad = −Σ g_i + N dlnσ/dm
        s = g_i - dlog_sigma
        return float(math.sqrt(np.sum((s - s.mean()) ** 2) * self.n_events / max(self.n_events - 1, 1)) / curvature)


# ------------------------------------------------------------------------ fit
@dataclass
class MtopResult:
    mt: float
    mt_err: float
    mt_err_curvature: float
    mt_err_sandwich: float
    truth_mt: float | None
    n_events: int
    n_steps: int
    converged: bool
    wall_s: float
    device: str
    n_int: int
    n_norm: int
    sigma_model_pb: float
    sigma_model_err_pb: float
    scan_err_lo: float | None = None
    scan_err_hi: float | None = None
    events_per_s_value: float | None = None
    events_per_s_derivs: float | None = None
    compile_s: float | None = None
    trajectory: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d


def likelihood_key(seed: int) -> jax.Array:
    """The key of `fit_mtop`'s integration points for `seed`."""
    return jax.random.fold_in(jax.random.key(seed), 0x1A7E)


def fit_mtop(
    jets: np.ndarray,
    *,
    cfg: MtopConfig = MtopConfig(),
    ctx=None,
    seed: int = 1,
    start: float = 170.0,
    max_steps: int = 15,
    scan: bool = True,
    truth_mt: float | None = None,
    progress: bool = True,
) -> tuple[MtopResult, dict]:
    """Fit m_t to observed `jets` `(n, 6, 4)` (see `PseudoData`) by maximising the
    matrix-element-method likelihood with `optax` (Newton-scaled steps).

    **Returns:** the `MtopResult` and a dict of arrays for the plots (trajectory,
    scan). σ_{m_t} = (d²(−ln L)/dm_t²)^{−1/2} at the minimum; the scan fits a
    parabola to −ln L at ±2.5σ.
    """
    import optax
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    start = check_mt("start mt", start)
    jets = np.asarray(jets, dtype=np.float64)
    if jets.ndim != 3 or jets.shape[1:] != (6, 4) or jets.shape[0] < 1:
        raise ValueError(f"jets must have shape (n >= 1, 6, 4); got {jets.shape}")
    ctx = _ctx(cfg) if ctx is None else ctx
    lik = MtopLikelihood(jets, cfg, ctx, likelihood_key(seed))
    lo, hi = MT_RANGE
    opt = optax.chain(optax.clip(3.0), optax.sgd(1.0))
    m = jnp.asarray(start, jnp.float64)
    state = opt.init(m)
    traj = [float(m)]
    converged = False
    bar = tqdm(total=max_steps, desc="fit-mtop", disable=not progress, leave=False)
    tc = time.perf_counter()
    v, g, h = (float(a) for a in lik.nll_derivs(m))
    compile_s = time.perf_counter() - tc
    n_steps = 0
    for n_steps in range(1, max_steps + 1):
        if not (h > 0 and math.isfinite(g)):
            # Far from the minimum the curvature can be negative: a plain clipped step.
            step_dir = np.sign(g) * 3.0
        else:
            step_dir = g / h
        updates, state = opt.update(jnp.asarray(step_dir), state, m)
        new = float(np.clip(float(m + updates), lo + 1.0, hi - 1.0))
        step = abs(new - float(m))
        m = jnp.asarray(new, jnp.float64)  # same dtype and weak type every step: no recompilation
        traj.append(new)
        bar.update(1)
        bar.set_postfix(mt=f"{new:.3f}", nll=f"{v:.3f}")
        v, g, h = (float(a) for a in lik.nll_derivs(m))
        if h > 0 and step < 0.02 / math.sqrt(h):
            converged = True
            break
    bar.close()
    mt_fit = float(m)
    if not h > 0:
        raise RuntimeError(f"the likelihood has no positive curvature at mt = {mt_fit:.3f} GeV (h = {h})")
    sigma = 1.0 / math.sqrt(h)
    sigma_sandwich = lik.sandwich_error(m, g, h) if lik.n_events > 1 else sigma

    # Throughput after compilation.
    lik.nll(m).block_until_ready()  # compile
    tv = time.perf_counter()
    lik.nll(m).block_until_ready()
    tv = time.perf_counter() - tv
    td = time.perf_counter()
    jax.block_until_ready(lik.nll_derivs(m))
    td = time.perf_counter() - td

    arrays = dict(trajectory=np.asarray(traj))
    scan_lo = scan_hi = None
    if scan:
        grid = mt_fit + sigma * np.linspace(-2.5, 2.5, 9)
        grid = grid[(grid > lo) & (grid < hi)]
        nll = np.array([float(lik.nll(jnp.asarray(a, jnp.float64))) for a in tqdm(grid, desc="scan", disable=not progress, leave=False)])
        c2, c1, c0 = np.polyfit(grid - mt_fit, nll, 2)
        vertex = -c1 / (2 * c2)
        half = math.sqrt(0.5 / c2) if c2 > 0 else float("nan")
        scan_lo, scan_hi = half - vertex, half + vertex
        arrays.update(scan_mt=grid, scan_dnll=nll - nll.min(), scan_parabola=(c2, c1, c0), scan_vertex=mt_fit + vertex)
    w = _generator(cfg, ctx)(lik.u_norm, jnp.asarray(mt_fit, jnp.float64))[3]
    sig, sig_err = jnp.mean(w), jnp.std(w) / math.sqrt(w.shape[0])
    dev = jax.devices()[0]
    result = MtopResult(
        mt=mt_fit,
        mt_err=sigma,
        mt_err_curvature=sigma,
        mt_err_sandwich=sigma_sandwich,
        truth_mt=truth_mt,
        n_events=lik.n_events,
        n_steps=n_steps,
        converged=converged,
        wall_s=time.perf_counter() - t0,
        device=f"{dev.platform}:{dev.device_kind}",
        n_int=cfg.n_int,
        n_norm=cfg.n_norm,
        sigma_model_pb=float(sig),
        sigma_model_err_pb=float(sig_err),
        scan_err_lo=scan_lo,
        scan_err_hi=scan_hi,
        events_per_s_value=lik.n_events / tv,
        events_per_s_derivs=lik.n_events / td,
        compile_s=compile_s,
        trajectory=[float(a) for a in traj],
    )
    return result, arrays


def reconstruct_mbjj(jets: np.ndarray, mw: float = 80.419) -> np.ndarray:
    """`(n, 2)` reconstructed m_bjj (GeV) per event: of the 6 ways to pair each b jet
    with a light-jet pair, the one minimising ((m_jj − M_W)/10)² for both pairs plus
    ((m_bjj − m_b̄jj)/20)² (all in GeV). NumPy, for plots."""
    jets = np.asarray(jets)

    def mass(p):
        m2 = p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1)
        return np.sqrt(np.maximum(m2, 0.0))

    cands, chi2 = [], []
    for pair in itertools.combinations((2, 3, 4, 5), 2):
        rest = [j for j in (2, 3, 4, 5) if j not in pair]
        for b in (0, 1):
            w1 = jets[:, pair[0]] + jets[:, pair[1]]
            w2 = jets[:, rest[0]] + jets[:, rest[1]]
            m1, m2 = mass(jets[:, b] + w1), mass(jets[:, 1 - b] + w2)
            chi2.append(((mass(w1) - mw) / 10) ** 2 + ((mass(w2) - mw) / 10) ** 2 + ((m1 - m2) / 20) ** 2)
            cands.append(np.stack([m1, m2], axis=-1))
    best = np.argmin(np.stack(chi2, axis=-1), axis=-1)
    cands = np.stack(cands, axis=1)
    return cands[np.arange(len(jets)), best]


def run_fit_mtop(
    *,
    out: Path,
    truth_mt: float = 172.5,
    events: int = 300,
    seed: int = 1,
    n_int: int = MtopConfig.n_int,
    production: str = MtopConfig.production,
    start: float = 170.0,
    max_steps: int = 15,
    scan: bool = True,
    plots: bool = True,
    progress: bool = True,
    pythia: bool = False,
) -> dict:
    """Pseudo-data at `truth_mt` (from the model, or with `pythia` from Pythia 8:
    `pythia_pseudo_data`), the fit, `out/result.json` and the plots (see module docs).
    Bad input raises `ValueError` naming the value and the allowed range."""
    from ._alphas import write_json_atomic

    truth_mt = check_mt("--truth-mt", truth_mt)
    start = check_mt("start mt", start)
    if int(events) < 1:
        raise ValueError(f"--events = {events} must be >= 1")
    if int(n_int) < 16 or int(n_int) % 16:
        raise ValueError(f"--n-int = {n_int} must be a positive multiple of 16 (two channels for each of 4 resonances)")
    t0 = time.perf_counter()
    cfg = MtopConfig(n_int=int(n_int), production=production)
    ctx = _ctx(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(seed)
    if pythia:
        data = pythia_pseudo_data(jax.random.fold_in(key, 1), truth_mt, int(events), cfg)
    else:
        data = generate_pseudo_data(jax.random.fold_in(key, 1), truth_mt, int(events), cfg, ctx)
    result, arrays = fit_mtop(
        data.jets, cfg=cfg, ctx=ctx, seed=seed, start=start, max_steps=max_steps, scan=scan, truth_mt=truth_mt, progress=progress
    )
    result.wall_s = time.perf_counter() - t0
    result.extra.update(
        pull=(result.mt - truth_mt) / result.mt_err,
        seed=seed,
        unweighting_efficiency=data.efficiency,
        unweighting_overflow=data.overflow_fraction,
        config=asdict(cfg),
        model=f"g g > t t~ ({production}) x BW tops/Ws x spin-averaged t->bqq' decays; Gaussian jet energies; toy-ISR kick",
        pseudo_data=data.source,
    )
    if pythia:
        from ._pythia import ttbar_settings

        result.extra["pythia_settings"] = list(ttbar_settings(truth_mt, cfg))
    if plots:
        model = generate_pseudo_data(jax.random.fold_in(key, 2), result.mt, 4 * int(events), cfg, ctx)
        from ._mtop_plots import plot_mtop

        label = "Pythia 8 pseudo-data" if pythia else "pseudo-data"
        plot_mtop(out, result, arrays, reconstruct_mbjj(data.jets, cfg.mw), reconstruct_mbjj(model.jets, cfg.mw), label)
    payload = result.to_json()
    write_json_atomic(out / "result.json", payload)
    return payload


def summary(payload: dict) -> str:
    lines = [
        f"m_t = {payload['mt']:.3f} ± {payload['mt_err']:.3f} GeV (stat; curvature {payload['mt_err_curvature']:.3f}, "
        f"sandwich {payload['mt_err_sandwich']:.3f})"
    ]
    if payload.get("scan_err_lo") is not None:
        lines[0] += f"   scan: -{payload['scan_err_lo']:.3f} +{payload['scan_err_hi']:.3f}"
    if payload.get("truth_mt") is not None:
        lines.append(f"truth = {payload['truth_mt']:.3f} GeV   pull = {payload.get('pull', math.nan):+.2f}")
    lines.append(
        f"events = {payload['n_events']}   steps = {payload['n_steps']}   converged = {payload['converged']}   "
        f"wall = {payload['wall_s']:.1f} s on {payload['device']}"
    )
    return "\n".join(lines)
