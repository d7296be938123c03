"""Differentiable event-shape templates from the shower, and binned likelihoods.

`ShowerTemplate` turns α_s into expected normalised bin contents of an event
shape: it showers a fixed Monte Carlo sample (one key: common random numbers for
every α_s), computes the observable per event, and fills a soft (Gaussian-kernel)
histogram with the events' weights. The discrete content of the sample (which
emissions exist) is recomputed at each α_s (`shower.layout`, no gradients); the
momenta and weights are then differentiable in α_s (`shower.realize`), and the
derivative of the template comes from one forward-mode JVP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike

from .. import observables, shower
from .._devices import n_shards
from .._precision import FULL

OBSERVABLES = ("thrust", "c", "y23")
"""Event shapes the fit knows: 1−T, the C-parameter, and −ln y23 (Durham)."""

_Y23_FLOOR = 1e-12  # −ln y23 ≤ 27.6: events with fewer than three partons land above any bin


def _one_minus_thrust(p: Array, m: Array) -> Array:
    return 1.0 - observables.thrust(p, m)


def _minus_log_y23(p: Array, m: Array) -> Array:
    return -jnp.log(jnp.maximum(observables.durham_y23(p, m), _Y23_FLOOR))


# Module-level functions (not fresh lambdas): they are static arguments of jitted
# per-bucket code, whose compilation cache is keyed on them.
_EVENT_SHAPES = {"thrust": _one_minus_thrust, "c": observables.c_parameter, "y23": _minus_log_y23}


def event_shape(name: str) -> Callable[[Array, Array], Array]:
    """Per-event observable `(k, n, 4), (k, n) -> (k,)` by name (see `OBSERVABLES`)."""
    if name not in _EVENT_SHAPES:
        raise ValueError(f"unknown observable {name!r}; known: {', '.join(OBSERVABLES)}")
    return _EVENT_SHAPES[name]


@dataclass(frozen=True)
class ShowerTemplate:
    """Normalised distribution of an event shape predicted by the shower.

    **Fields:** `observable` (a name in `OBSERVABLES`), `edges` (bin edges of the
    observable as the fit uses it: 1−T, C or −ln y23), `n_mc` events showered with
    `key`, `base` the `DiscreteQCD` whose `alpha_s` is replaced, `bandwidth` the soft
    histogram's kernel width as a fraction of the narrowest bin (default 0.25),
    `jumps`: whether `predict`'s derivative includes the surface term of k⊥-order
    swaps (`shower.realize_with_jumps`; without it the thrust template's d/dα_s is
    ≈ 3 % large and the Fisher error ≈ 3 % small; other observables differ). Values never depend on `jumps`.
    """

    observable: str
    edges: np.ndarray
    n_mc: int
    key: Array
    base: shower.DiscreteQCD
    bandwidth: float = 0.25
    jumps: bool = False

    def model(self, alpha_s) -> shower.DiscreteQCD:
        return _with_alpha(self.base, jnp.asarray(alpha_s, self.base.alpha_s.dtype))

    def layout(self, alpha_s: float, key: Array | None = None) -> shower.Layout:
        """The discrete content of the template's events at `alpha_s` (or of `n_mc`
        other events, from `key`)."""
        key = self.key if key is None else key
        # The first layout gets 16 steps of headroom (see `_arrays`), later ones the
        # largest n_steps so far.
        headroom = 0 if "n_steps" in self._shapes else 16
        return shower.layout(key, self.model(alpha_s), self.n_mc, self._shapes.get("n_steps", 0), headroom)

    @property
    def _shapes(self) -> dict:
        # Shapes only grow across calls (per template), so that a fit that moves α_s
        # around compiles its template a few times at most, not once per step.
        if "_shape_cache" not in self.__dict__:
            object.__setattr__(self, "_shape_cache", {})
        return self.__dict__["_shape_cache"]

    def _arrays(self, alpha_s: float, key: Array | None = None, jumps: bool = False):
        # Shapes with headroom (16 more steps on the first layout, 25% more rows per
        # bucket), so that the fit's later α_s rarely need a new compilation (≈ 15-30 s).
        lay = self.layout(float(alpha_s), key)
        partners, mask = None, lay.mask
        if jumps:
            m = self.model(float(alpha_s))
            # The same 25 % headroom as the buckets'.
            partners = shower.jump_partners(lay, m, min_partners=self._shapes.get("partners", 0), headroom=0.25)
            self._shapes["partners"] = partners.n_partners
            if partners.layout is None:
                partners = None
            else:
                mask = partners.join(mask, partners.layout.mask)
        buckets = observables.MultiplicityBuckets(
            mask, min_rows=self._shapes.get("rows"), headroom=0.25, shards=n_shards(mask.shape[0])
        )
        # Built with min_rows, the buckets hold at least the old rows of every size they
        # keep; sizes above a smaller capacity than before keep their old entry.
        self._shapes.update(n_steps=lay.n_steps, rows={**self._shapes.get("rows", {}), **buckets.rows})
        h = self.bandwidth * float(np.min(np.diff(self.edges)))
        return lay, buckets, h, partners, mask

    def _events_jvp(self, alpha_s: float, key: Array | None = None):
        """Per-event observable and weight, with their α_s derivatives: `(n_mc,)` each
        for further events (`key`); for the template's own and, where `jumps`, their
        partners (weight 0) in `JumpPartners.join`'s order."""
        lay, buckets, h, partners, mask = self._arrays(alpha_s, key, self.jumps and key is None)
        # Three separately compiled pieces (shower, observable per multiplicity bucket,
        # histogram), so that a changed bucket length recompiles only its bucket.
        events, dp, dw = shower.realize_jvp(lay, self.model(alpha_s), partners)
        p, w = events.momenta, events.weights
        x, dx = buckets.jvp(event_shape(self.observable), p, dp, mask)
        overflow = float(np.mean(np.asarray(lay.structure.overflow)))
        return (x, dx, w, dw), h, overflow

    def predict(self, alpha_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Bin fractions `(bins + 1,)` (the last: outside the binned range), their
        derivative in α_s, their MC variance, and the overflow fraction of the sample,
        at `alpha_s`."""
        cache = self._shapes.setdefault("predictions", {})
        if float(alpha_s) in cache:
            return cache[float(alpha_s)]
        (x, dx, w, dw), h, overflow = self._events_jvp(alpha_s)
        (frac, var), (dfrac, _) = _histogram_jvp(x, dx, w, dw, jnp.asarray(self.edges), h)
        out = (np.asarray(frac), np.asarray(dfrac), np.asarray(var), overflow)
        cache[float(alpha_s)] = out
        return out

    def sample(self, alpha_s: float, key: Array) -> tuple[np.ndarray, np.ndarray, float]:
        """`n_mc` further events, showered from `key` at `alpha_s`: their observable
        values `(n_mc,)`, weights `(n_mc,)` and overflow fraction. Runs the template's
        own compiled code with its shapes, so pseudo-data cost no compilation of their
        own (the unused α_s derivative costs ≈ 30 % more than a forward pass)."""
        (x, _, w, _), _, overflow = self._events_jvp(alpha_s, key)
        return np.asarray(x), np.asarray(w), overflow

    def fractions_fn(self, alpha_s: float) -> Callable[[Array], tuple[Array, Array]]:
        """The differentiable map α_s ↦ (fractions, MC variance), each `(bins + 1,)` as
        in `predict`, with the shower's discrete content fixed at `alpha_s`, for
        `jax.grad`, `jax.jacfwd` or `jax.hessian` by users. Its value and first
        derivative at `alpha_s` are `predict`'s: with `jumps`, the derivative includes
        the jump partners' surface term (`shower.realize_with_jumps`), which holds for
        the first derivative only (a Hessian sees the partners' weights as linear)."""
        lay, buckets, h, partners, _ = self._arrays(alpha_s, jumps=self.jumps)
        edges = jnp.asarray(self.edges)
        return lambda a: _fractions(a, lay, partners, buckets, self.base, self.observable, edges, h)


def _with_alpha(base: shower.DiscreteQCD, alpha_s: Array) -> shower.DiscreteQCD:
    import equinox as eqx

    return eqx.tree_at(lambda m: m.alpha_s, base, alpha_s)


def _fractions(alpha_s, lay, partners, buckets, base, observable, edges, h):
    """Normalised soft histogram of `observable` and Σw²/(Σw)² per bin, each
    `(bins + 1,)` with the fraction outside the binned range last; with the jump
    `partners` (or None) joined to the events."""
    m = _with_alpha(base, alpha_s)
    events, _ = shower.realize(lay, m) if partners is None else shower.realize_with_jumps(lay, partners, m)
    x = buckets.apply(event_shape(observable), events.momenta, events.mask)
    return _normalised_histogram(x, events.weights, edges, h)


def _normalised_histogram(x, w, edges, h):
    """Fractions `(bins + 1,)` of the weight in each bin and, last, outside the binned
    range, and Σw²/(Σw)² of each.

    Values are those of hard bins, as the data are binned (`numpy.histogram`: the last
    bin includes its right edge). Derivatives: exact in the weights; for values `x`
    that move, those of Gaussian-kernel (soft) bins, which a hard bin does not have.
    The kernel bins' own values differ from the hard ones by O(h²): enough to bias the
    out-of-range cell by ~2σ in a 10⁵-event fit, where the steep two-jet peak spills
    over the lower edge."""
    nb = edges.shape[0] - 1
    soft = observables.soft_bin_weights(x, edges, h)
    soft = jnp.concatenate([soft, (1.0 - jnp.sum(soft, axis=1))[:, None]], axis=1)
    x = jax.lax.stop_gradient(x)
    idx = jnp.searchsorted(edges, x, side="right") - 1
    idx = jnp.where(x == edges[-1], nb - 1, idx)
    idx = jnp.where((idx < 0) | (idx >= nb), nb, idx)
    hard = jax.nn.one_hot(idx, nb + 1, dtype=soft.dtype)
    k = hard + (soft - jax.lax.stop_gradient(soft))  # hard value, soft derivative
    total = jnp.sum(w)
    return jnp.dot(w, k, precision=FULL) / total, jnp.dot(w * w, k, precision=FULL) / total**2


@eqx.filter_jit
def _histogram_jvp(x, dx, w, dw, edges, h):
    return jax.jvp(lambda x, w: _normalised_histogram(x, w, edges, h), (x, w), (dx, dw))


def poisson_nll(counts: ArrayLike, expected: ArrayLike) -> Array:
    """Binned Poisson −ln L up to a constant: Σ (μ − n ln μ). Differentiable in μ."""
    expected = jnp.asarray(expected)
    return jnp.sum(expected - jnp.asarray(counts) * jnp.log(expected))


def poisson_deviance(counts: np.ndarray, expected: np.ndarray) -> float:
    """−2 ln(L/L_sat) = 2 Σ [μ − n + n ln(n/μ)]: the χ² of a Poisson fit."""
    n = np.asarray(counts, float)
    mu = np.asarray(expected, float)
    term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / mu), 0.0)
    return float(2.0 * np.sum(mu - n + term))


def make_key(seed: int) -> Array:
    return jr.key(int(seed))
