"""The α_s fit: event shapes from the differentiable shower against data.

**Likelihood.** Pseudo-data (counts n_b from N events): binned Poisson,
−ln L = Σ (μ_b − n_b ln μ_b) with μ_b = N f_b(α_s), f_b the shower's normalised soft
histogram (`ShowerTemplate`), over the bins and one more cell, the N − Σ n_b events
outside the binned range (μ = N f_out): with N fixed this is the exact multinomial
likelihood, and the fraction of events in range, which α_s moves, is information.
Real data (normalised densities d_b ± σ_b): Gaussian, χ² = Σ ((d_b − c_b f_b/Δ_b)/σ_b)²,
with per-bin hadronisation corrections c_b.
Several observables add their −ln L (they are treated as independent).

**Optimiser.** Each step recomputes the shower's discrete content at the current
α_s, takes the template and its derivative from one forward-mode JVP, and feeds the
Fisher-scaled gradient g/I (a Gauss–Newton step) to `optax.sgd` behind an
`optax.clip`; α_s stays inside `ALPHA_S_RANGE`. It stops when the proposed step is
below 0.05 of the current statistical uncertainty, or when a step reverses and is
below 0.25 of the total (stat ⊕ MC) uncertainty (the template's own MC noise makes
smaller steps meaningless); the result is then the point just evaluated. The scan
re-evaluates −ln L (new discrete content at each point) at the minimum and ±2σ, and
takes the ±1σ points from the parabola through them.

**Uncertainties.** Statistical: σ = I^{-1/2} from the Fisher information
I = Σ (∂μ_b)²/μ_b (Poisson) or Σ (∂m_b/σ_b)² (χ²) at the minimum, checked against a
likelihood scan (ΔlnL = ½ crossings). Monte Carlo statistics of the template:
σ_mc² = Σ_b (∂μ_b/μ_b)² V_b / I² with V_b the template's variance (linear response of
the score), reported separately and included in `alpha_s_err_total`.

**Goodness of fit.** `chi2` is the Poisson deviance (pseudo-data) or Σ r_b² (real
data) against the data's errors alone; `chi2_ndf_with_mc` is Pearson's
Σ (n_b − μ_b)²/(μ_b + V_b) (or Σ (d_b − m_b)²/(σ_b² + V_b)), which adds the template's
MC variance: with as many template events as data events the first is ≈ 2–3 per
degree of freedom for a correct model, the second ≈ 1.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jax
import numpy as np
import optax

from .. import shower
from .._atomic import atomic_open
from .._devices import device_label
from ..shower import ALPHA_S_RANGE
from ._template import OBSERVABLES, ShowerTemplate, event_shape, make_key, poisson_deviance


@dataclass
class Target:
    """What one observable is fitted to.

    Either `counts` (pseudo-data: Poisson, `n_events` total) or `density` with
    `density_err` (real data: (1/σ) dσ/dx per bin, Gaussian). `correction` (per bin,
    hadron/parton) multiplies the shower's prediction; `edges` are in the fit variable
    (1−T, C, −ln y23).
    """

    observable: str
    edges: np.ndarray
    counts: np.ndarray | None = None
    n_events: int | None = None
    density: np.ndarray | None = None
    density_err: np.ndarray | None = None
    correction: np.ndarray | None = None

    def __post_init__(self):
        if self.observable not in OBSERVABLES:
            raise ValueError(f"unknown observable {self.observable!r}; known: {', '.join(OBSERVABLES)}")
        self.edges = np.asarray(self.edges, float)
        nb = len(self.edges) - 1
        if nb < 2 or np.any(np.diff(self.edges) <= 0):
            raise ValueError(f"edges must be increasing with at least 3 entries, got {self.edges}")
        if (self.counts is None) == (self.density is None):
            raise ValueError("give exactly one of counts (pseudo-data) or density (real data)")
        for name in ("counts", "density", "density_err", "correction"):
            v = getattr(self, name)
            if v is not None and np.shape(v) != (nb,):
                raise ValueError(f"{name} must have {nb} entries (one per bin), got {np.shape(v)}")
        if self.density is not None and (self.density_err is None or np.any(np.asarray(self.density_err) <= 0)):
            raise ValueError("density_err must be given and positive for real data")

    @property
    def poisson(self) -> bool:
        return self.counts is not None


@dataclass
class FitResult:
    alpha_s: float
    alpha_s_err: float
    alpha_s_err_mc: float
    alpha_s_err_total: float
    truth_alpha_s: float | None
    chi2: float
    ndf: int
    chi2_ndf: float
    chi2_ndf_with_mc: float
    n_events: int
    n_mc: int
    n_steps: int
    converged: bool
    overflow_fraction: float
    wall_s: float
    device: str
    observables: list[str]
    scan_err_lo: float | None = None
    scan_err_hi: float | None = None
    extra: dict = field(default_factory=dict)
    trajectory: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        return d


class _Objective:
    """Sum over targets of −ln L, its derivative and Fisher information at α_s."""

    def __init__(self, targets: list[Target], templates: list[ShowerTemplate]):
        self.targets = targets
        self.templates = templates

    def terms(self, alpha_s: float) -> dict:
        nll = grad = fisher = 0.0
        mc_num = 0.0
        chi2 = chi2_mc = 0.0
        overflow = 0.0
        pred = []
        for tgt, tpl in zip(self.targets, self.templates):
            f_all, df_all, var_all, ovf = tpl.predict(alpha_s)
            # The last cell is the fraction outside the binned range.
            f, df, var = f_all[:-1], df_all[:-1], var_all[:-1]
            overflow = max(overflow, ovf)
            c = np.ones_like(f) if tgt.correction is None else np.asarray(tgt.correction)
            if tgt.poisson:
                n = np.asarray(tgt.counts, float)
                mu = tgt.n_events * c * f
                dmu = tgt.n_events * c * df
                vmu = (tgt.n_events * c) ** 2 * var
                pred.append(mu)
                if tgt.correction is None:
                    # Counts of N events (N fixed): the events outside the range are a
                    # cell too, and the likelihood is the exact multinomial one. Without
                    # it the fraction of events in range, which α_s moves, counts with
                    # Poisson's variance instead of the binomial's: σ(α_s) came out
                    # 1.6× too large for thrust (closure pull width 0.84).
                    n = np.append(n, tgt.n_events - n.sum())
                    mu = np.append(mu, tgt.n_events * f_all[-1])
                    dmu = np.append(dmu, tgt.n_events * df_all[-1])
                    vmu = np.append(vmu, tgt.n_events**2 * var_all[-1])
                mu = np.maximum(mu, 1e-300)
                nll += float(np.sum(mu - n * np.log(mu)))
                grad += float(np.sum(dmu * (1.0 - n / mu)))
                fisher += float(np.sum(dmu**2 / mu))
                mc_num += float(np.sum((dmu / mu) ** 2 * vmu))
                chi2 += poisson_deviance(n, mu)
                chi2_mc += float(np.sum((n - mu) ** 2 / (mu + vmu)))
            else:
                width = np.diff(tgt.edges)
                m = c * f / width
                dm = c * df / width
                vm = (c / width) ** 2 * var
                s = np.asarray(tgt.density_err, float)
                r = (np.asarray(tgt.density) - m) / s
                nll += 0.5 * float(np.sum(r**2))
                grad += float(-np.sum(r * dm / s))
                fisher += float(np.sum((dm / s) ** 2))
                mc_num += float(np.sum((dm / s**2) ** 2 * vm))
                chi2 += float(np.sum(r**2))
                chi2_mc += float(np.sum((np.asarray(tgt.density) - m) ** 2 / (s**2 + vm)))
                pred.append(m)
        return dict(nll=nll, grad=grad, fisher=fisher, mc_var_num=mc_num, chi2=chi2, chi2_mc=chi2_mc, overflow=overflow, pred=pred)


def _matches(template: ShowerTemplate, observable: str, edges: np.ndarray) -> bool:
    """Whether `template` predicts `observable` in the bins `edges`."""
    return template.observable == observable and np.array_equal(template.edges, edges)


def make_templates(
    observables: list[tuple[str, np.ndarray]],
    n_mc: int,
    seed: int,
    base: shower.DiscreteQCD | None = None,
    jumps: bool = False,
) -> list[ShowerTemplate]:
    """One `ShowerTemplate` per `(observable, edges)`, each with its own MC sample of
    `n_mc` events (keys from `seed`), as `fit_alphas` makes them. `jumps`: see
    `ShowerTemplate`."""
    base = shower.DiscreteQCD() if base is None else base
    key = make_key(seed)
    return [
        ShowerTemplate(o, np.asarray(e), int(n_mc), jax.random.fold_in(key, i), base, jumps=jumps)
        for i, (o, e) in enumerate(observables)
    ]


def fit_alphas(
    targets: list[Target],
    *,
    n_mc: int = 100_000,
    seed: int = 1,
    start: float = 0.125,
    max_steps: int = 12,
    truth_alpha_s: float | None = None,
    base: shower.DiscreteQCD | None = None,
    scan: bool = True,
    scan_points: int = 3,
    progress: bool = True,
    templates: list[ShowerTemplate] | None = None,
    jumps: bool = False,
) -> tuple[FitResult, dict]:
    """Fit α_s(M_Z) to the `targets` by gradient descent (see module docs).

    `templates` (from `make_templates`, e.g. already used by `pseudo_data`) replace
    the ones made from `n_mc`, `seed`, `base` and `jumps` (the derivative's surface
    term of k⊥-order swaps, `ShowerTemplate`; ≈ 2× the time per step after a longer
    first compilation). The scan evaluates `scan_points` (odd, ≥ 3) points evenly
    over ±2σ and fits a parabola. Returns the `FitResult` and a dict of arrays for
    plotting (trajectory, scan, predictions at the minimum).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    if scan and (scan_points < 3 or scan_points % 2 == 0):
        raise ValueError(f"scan_points must be odd and >= 3, got {scan_points}")
    if templates is None:
        templates = make_templates([(t.observable, t.edges) for t in targets], n_mc, seed, base, jumps)
    elif len(templates) != len(targets) or not all(_matches(tp, t.observable, t.edges) for tp, t in zip(templates, targets)):
        raise ValueError("templates must have the targets' observables and edges, in the same order")
    n_mc = templates[0].n_mc
    obj = _Objective(targets, templates)
    lo, hi = ALPHA_S_RANGE
    opt = optax.chain(optax.clip(0.01), optax.sgd(1.0))
    params = np.asarray(start, float)
    state = opt.init(params)
    trajectory = [float(params)]
    converged = False
    bar = tqdm(total=max_steps, desc=f"fit-alphas {'+'.join(t.observable for t in targets)}", disable=not progress, leave=False)
    previous = 0.0
    terms = None
    n_steps = 0
    for n_steps in range(1, max_steps + 1):
        terms = obj.terms(float(params))
        if not (terms["fisher"] > 0 and math.isfinite(terms["grad"])):
            raise RuntimeError(
                f"the likelihood has no usable curvature at alpha_s={float(params):.5f} "
                f"(gradient {terms['grad']}, Fisher information {terms['fisher']})"
            )
        natural = terms["grad"] / terms["fisher"]  # Gauss–Newton step on −ln L
        updates, state = opt.update(np.asarray(natural), state, params)
        new = float(np.clip(params + updates, lo + 1e-4, hi - 1e-4))
        step = abs(new - float(params))
        params = np.asarray(new)
        trajectory.append(new)
        bar.update(1)
        bar.set_postfix(alpha_s=f"{new:.5f}", nll=f"{terms['nll']:.2f}")
        sigma_stat = 1.0 / math.sqrt(terms["fisher"])
        sigma_tot = math.hypot(sigma_stat, math.sqrt(terms["mc_var_num"]) / terms["fisher"])
        # Each α_s re-lays out the template (new discrete content), so near the minimum
        # the steps jitter at the template-MC level; stop when the step is tiny, or when
        # it reverses and is small against the total (stat ⊕ MC) error.
        reversed_ = (new - float(trajectory[-2])) * previous < 0
        previous = new - float(trajectory[-2])
        if step < 0.05 * sigma_stat or (reversed_ and step < 0.25 * sigma_tot):
            # Stay at the point just evaluated (the step is negligible or template
            # jitter): its template serves the final errors, saving one evaluation.
            params = np.asarray(trajectory[-2])
            trajectory.pop()
            converged = True
            break
    bar.close()
    alpha = float(params)
    terms = obj.terms(alpha)
    sigma = 1.0 / math.sqrt(terms["fisher"])
    sigma_mc = math.sqrt(terms["mc_var_num"]) / terms["fisher"]
    out = dict(trajectory=np.asarray(trajectory), pred=terms["pred"], alpha_s=alpha, templates=templates)

    scan_lo = scan_hi = None
    if scan:
        # ±2σ, not ±1σ: each point has its own discrete content, whose MC jitter in
        # −ln L is then small against the ΔlnL = 2 it has to resolve.
        grid = alpha + sigma * np.linspace(-2.0, 2.0, scan_points)
        grid = grid[(grid > lo) & (grid < hi)]
        nll = np.array([obj.terms(float(a))["nll"] for a in tqdm(grid, desc="scan", disable=not progress, leave=False)])
        dnll = nll - nll.min()
        # ±1σ where a parabola fitted to the scan crosses ΔlnL = 1/2.
        c2, c1, c0 = np.polyfit(grid - alpha, nll, 2)
        if c2 > 0:  # else the scan (template-MC noise) shows no curvature: no scan errors
            vertex = -c1 / (2 * c2)
            half = math.sqrt(0.5 / c2)
            scan_lo, scan_hi = half - vertex, half + vertex
        out.update(scan_alpha=grid, scan_dnll=dnll, scan_parabola=(c2, c1, c0))

    ndf = sum(len(t.edges) - 1 for t in targets) - 1
    n_events = int(sum(t.n_events or 0 for t in targets)) if all(t.poisson for t in targets) else 0
    result = FitResult(
        alpha_s=alpha,
        alpha_s_err=sigma,
        alpha_s_err_mc=sigma_mc,
        alpha_s_err_total=math.hypot(sigma, sigma_mc),
        truth_alpha_s=truth_alpha_s,
        chi2=terms["chi2"],
        ndf=ndf,
        chi2_ndf=terms["chi2"] / ndf,
        chi2_ndf_with_mc=terms["chi2_mc"] / ndf,
        n_events=n_events // max(len(targets), 1),
        n_mc=n_mc,
        n_steps=n_steps,
        converged=converged,
        overflow_fraction=terms["overflow"],
        wall_s=time.perf_counter() - t0,
        device=device_label(),
        observables=[t.observable for t in targets],
        scan_err_lo=scan_lo,
        scan_err_hi=scan_hi,
        trajectory=[float(a) for a in trajectory],
    )
    # Which derivative the steps and the Fisher error used (`ShowerTemplate.jumps`).
    result.extra["jump_partners"] = bool(all(t.jumps for t in templates))
    return result, out


def pseudo_data(
    observable: str,
    edges: np.ndarray,
    truth: float,
    n_events: int,
    seed: int,
    base: shower.DiscreteQCD | None = None,
    template: ShowerTemplate | None = None,
) -> tuple[Target, float]:
    """Shower events at α_s = `truth` (independent seed) and histogram `observable`
    (hard bins) for `n_events` unweighted events. Returns the `Target` and the overflow
    fraction.

    The events are showered in batches by `template` (default: one of `n_events`
    events per batch), so that a fit that passes the same template compiles nothing
    twice; the weighted events are unweighted by accept/reject against the largest
    weight, so that the pseudo-data are Poisson counts like real data.
    """
    if template is None:
        template = make_templates([(observable, edges)], n_events, seed, base)[0]
    elif not _matches(template, observable, edges):
        raise ValueError(f"the template is for {template.observable!r} with other edges, not {observable!r}")
    key = jax.random.fold_in(make_key(seed), 0xDA7A)
    rng = np.random.default_rng(seed)
    xs, ws, us, overflows = [], [], [], []
    # Weights are ≤ 1 with mean ≈ 0.6: about 1.7 n_events showered events are needed.
    for batch in range(64):
        x, w, overflow = template.sample(truth, jax.random.fold_in(key, batch))
        xs.append(x)
        ws.append(w)
        us.append(rng.random(len(w)))
        overflows.append(overflow)
        w_all = np.concatenate(ws)
        keep = np.nonzero(np.concatenate(us) < w_all / max(w_all.max(), 1e-300))[0]
        if len(keep) >= n_events:
            break
    else:
        raise RuntimeError(f"only {len(keep)} of {len(w_all)} events survived unweighting; need {n_events}")
    counts, _ = np.histogram(np.concatenate(xs)[keep[:n_events]], edges)
    # n_events counts every event, also those outside the fit range: the template's
    # fractions are normalised to all events.
    return Target(observable, edges, counts=counts.astype(float), n_events=n_events), float(np.mean(overflows))


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON via a temporary file in the same folder, then rename."""
    with atomic_open(path) as fh:
        json.dump(_finite_or_null(payload), fh, indent=2, default=_jsonable, allow_nan=False)
        fh.write("\n")


def _finite_or_null(x):
    """NaN and ±inf become null: JSON has no such numbers (`json.dump` would write
    bare `NaN`, which JSON readers reject)."""
    if isinstance(x, dict):
        return {k: _finite_or_null(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite_or_null(v) for v in x]
    if isinstance(x, np.ndarray):
        return _finite_or_null(x.tolist())
    if isinstance(x, (float, np.floating)) and not math.isfinite(float(x)):
        return None
    return x


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")
