"""`DiscreteQCD`: the parameters of the discrete-QCD shower, and the coupling.

Running coupling (one loop, fixed n_f):
    α_s(μ) = 1 / (b0 ln(μ²/Λ²)),   b0 = (33 − 2 n_f)/(12π),
    Λ = M_Z exp(−1/(2 b0 α_s(M_Z))),
so that α_s(k⊥) = 1/(b0 κ) with κ = ln(k⊥²/Λ²). All conversions are smooth
functions of `alpha_s`, so gradients flow through them.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

MZ = 91.1876
"""Z mass in GeV (PDG), the reference scale of `alpha_s`."""

C_F = 4.0 / 3.0
C_A = 3.0

# κ_c is floored smoothly at KAPPA_FLOOR (k⊥,c ≥ e^{1/2·KAPPA_FLOOR} Λ ≈ 2.7 Λ) so the
# coupling at the cutoff stays ≤ 1/(2 b0) ≈ 0.82 even where kt_min < Λ (large α_s).
KAPPA_FLOOR = 2.0
KAPPA_FLOOR_SOFTNESS = 0.1

ALPHA_S_RANGE = (0.06, 0.22)
"""Documented range of α_s(M_Z) in which the model is validated."""


def b0(n_flavours: int) -> float:
    """One-loop β-function coefficient `(33 − 2 n_f)/(12π)` (dα_s/d ln μ² = −b0 α_s²)."""
    return (33.0 - 2.0 * n_flavours) / (12.0 * math.pi)


def lambda_qcd(alpha_s_mz: Float[ArrayLike, "*b"], n_flavours: int = 5) -> Float[Array, "*b"]:
    """One-loop Λ_QCD in GeV from α_s(M_Z); differentiable (dΛ/dα_s = Λ/(2 b0 α_s²))."""
    return MZ * jnp.exp(-1.0 / (2.0 * b0(n_flavours) * jnp.asarray(alpha_s_mz)))


def alpha_s_from_lambda(lam: Float[ArrayLike, "*b"], n_flavours: int = 5) -> Float[Array, "*b"]:
    """Inverse of `lambda_qcd`: α_s(M_Z) = 1/(b0 ln(M_Z²/Λ²))."""
    return 1.0 / (b0(n_flavours) * jnp.log(MZ**2 / jnp.asarray(lam) ** 2))


def running_alpha_s(
    q: Float[ArrayLike, "*b"], alpha_s_mz: Float[ArrayLike, ""], n_flavours: int = 5
) -> Float[Array, "*b"]:
    """One-loop α_s(q) for q in GeV (q > Λ), starting from α_s(M_Z)."""
    lam = lambda_qcd(alpha_s_mz, n_flavours)
    return 1.0 / (b0(n_flavours) * jnp.log(jnp.asarray(q) ** 2 / lam**2))


def _concrete(x) -> float | None:
    """The Python value of a scalar, or None under tracing (checks then happen in jit)."""
    try:
        return float(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return None


class DiscreteQCD(eqx.Module):
    """Parameters of the discrete-QCD final-state shower for e+e- → γ*/Z → q q̄.

    **Differentiable leaves** (scalars):
    - `alpha_s`: α_s(M_Z), one-loop running with `n_flavours` (default 0.118).
    - `kt_min`: shower cutoff in k⊥, GeV (default 0.5). Must be ≥ `kt_min_floor`.
    - `delta_y`: width of a rapidity bin (one effective gluon per bin), default
      11/6 ≈ 1.83 (the effective gluon size of the Lund group). Must be ≥ `delta_y_min`.

    **Static fields** (fix shapes or code paths):
    - `sqrt_s`: centre-of-mass energy in GeV (default 91.1876).
    - `capacity`: slots per event in the output (2 quarks + gluons), default 64.
    - `n_flavours`: active flavours in the running and in the q q̄ choice (default 5).
    - `kt_min_floor`, `delta_y_min`: lower bounds that size the static bin layout.
    - `softness`: width in κ over which an emission near the cutoff is switched on
      (k⊥² scaled by a smoothstep from κ_c to κ_c + softness), default 0.5.
    - `me_correction`: reweight the hardest emission to the exact O(α_s) matrix element.
    - `me_temperature`: τ, in units of κ, of the soft choice of the hardest emission
      for that weight (see `hardest_emission_weight`), default 0.1.
    - `key_depth`: the deepest fold nesting tracked (deeper is flagged as overflow).
    - `frozen_coupling`, `first_emission_only`: test switches for the O(α_s) limit
      (see the module docs of `diffhep.shower`).
    """

    alpha_s: Float[Array, ""]
    kt_min: Float[Array, ""]
    delta_y: Float[Array, ""]
    sqrt_s: float = eqx.field(static=True, default=MZ)
    capacity: int = eqx.field(static=True, default=64)
    n_flavours: int = eqx.field(static=True, default=5)
    kt_min_floor: float = eqx.field(static=True, default=0.5)
    delta_y_min: float = eqx.field(static=True, default=1.5)
    softness: float = eqx.field(static=True, default=0.5)
    me_correction: bool = eqx.field(static=True, default=True)
    me_temperature: float = eqx.field(static=True, default=0.1)
    key_depth: int = eqx.field(static=True, default=12)
    frozen_coupling: bool = eqx.field(static=True, default=False)
    first_emission_only: bool = eqx.field(static=True, default=False)

    def __init__(
        self,
        alpha_s: float | ArrayLike = 0.118,
        kt_min: float | ArrayLike = 0.5,
        delta_y: float | ArrayLike = 11.0 / 6.0,
        *,
        sqrt_s: float = MZ,
        capacity: int = 64,
        n_flavours: int = 5,
        kt_min_floor: float = 0.5,
        delta_y_min: float = 1.5,
        softness: float = 0.5,
        me_correction: bool = True,
        me_temperature: float = 0.1,
        key_depth: int = 12,
        frozen_coupling: bool = False,
        first_emission_only: bool = False,
    ):
        dtype = jnp.result_type(float)
        self.alpha_s = jnp.asarray(alpha_s, dtype)
        self.kt_min = jnp.asarray(kt_min, dtype)
        self.delta_y = jnp.asarray(delta_y, dtype)
        self.sqrt_s = float(sqrt_s)
        self.capacity = int(capacity)
        self.n_flavours = int(n_flavours)
        self.kt_min_floor = float(kt_min_floor)
        self.delta_y_min = float(delta_y_min)
        self.softness = float(softness)
        self.me_correction = bool(me_correction)
        self.me_temperature = float(me_temperature)
        self.key_depth = int(key_depth)
        self.frozen_coupling = bool(frozen_coupling)
        self.first_emission_only = bool(first_emission_only)

    def __check_init__(self):
        for name in ("alpha_s", "kt_min", "delta_y"):
            if jnp.shape(getattr(self, name)) != ():
                raise ValueError(f"DiscreteQCD.{name} must be a scalar, got shape {jnp.shape(getattr(self, name))}")
        if self.capacity < 3:
            raise ValueError(f"DiscreteQCD.capacity must be >= 3, got {self.capacity}")
        if not 3 <= self.n_flavours <= 6:
            raise ValueError(f"DiscreteQCD.n_flavours must be in [3, 6], got {self.n_flavours}")
        if not self.kt_min_floor > 0:
            raise ValueError(f"DiscreteQCD.kt_min_floor must be > 0 GeV, got {self.kt_min_floor}")
        if not self.sqrt_s > 2 * self.kt_min_floor:
            raise ValueError(
                f"DiscreteQCD.sqrt_s={self.sqrt_s} GeV must exceed twice the cutoff floor "
                f"(2 x {self.kt_min_floor} GeV)"
            )
        if not self.delta_y_min > 0:
            raise ValueError(f"DiscreteQCD.delta_y_min must be > 0, got {self.delta_y_min}")
        if not self.softness > 0:
            raise ValueError(f"DiscreteQCD.softness must be > 0, got {self.softness}")
        if not self.me_temperature > 0:
            raise ValueError(f"DiscreteQCD.me_temperature must be > 0, got {self.me_temperature}")
        if not 1 <= self.key_depth <= 32:
            raise ValueError(f"DiscreteQCD.key_depth must be in [1, 32], got {self.key_depth}")
        self.check_values()

    def check_values(self) -> None:
        """Raise `ValueError` for parameter values outside their documented ranges.
        Called at construction and by `sample`; skipped for traced values."""
        a = _concrete(self.alpha_s)
        lo, hi = ALPHA_S_RANGE
        if a is not None and not lo <= a <= hi:
            raise ValueError(f"alpha_s={a} is outside the supported range [{lo}, {hi}]")
        kt = _concrete(self.kt_min)
        if kt is not None:
            if kt < self.kt_min_floor:
                raise ValueError(
                    f"kt_min={kt} GeV is below kt_min_floor={self.kt_min_floor} GeV, which sizes "
                    "the bin layout; lower kt_min_floor (static) to allow it"
                )
            if not kt < self.sqrt_s / 2:
                raise ValueError(
                    f"kt_min={kt} GeV must be below sqrt_s/2 = {self.sqrt_s / 2} GeV"
                )
        dy = _concrete(self.delta_y)
        if dy is not None and not self.delta_y_min <= dy <= 5.0:
            raise ValueError(f"delta_y={dy} is outside [delta_y_min={self.delta_y_min}, 5]")

    # -- derived quantities (all differentiable) ---------------------------------------

    @property
    def b0(self) -> float:
        return b0(self.n_flavours)

    @property
    def lambda_qcd(self) -> Float[Array, ""]:
        """One-loop Λ in GeV."""
        return lambda_qcd(self.alpha_s, self.n_flavours)

    @property
    def log_s(self) -> Float[Array, ""]:
        """L = ln(s/Λ²): the base of the q q̄ triangle in the Lund plane."""
        return 2.0 * jnp.log(self.sqrt_s / self.lambda_qcd)

    @property
    def kappa_cut(self) -> Float[Array, ""]:
        """κ_c = ln(kt_min²/Λ²), smoothly floored at `KAPPA_FLOOR` (see module docs)."""
        raw = 2.0 * jnp.log(self.kt_min / self.lambda_qcd)
        t = KAPPA_FLOOR_SOFTNESS
        return t * jnp.logaddexp(raw / t, KAPPA_FLOOR / t)

    @property
    def max_height(self) -> float:
        """Static bound on L − κ_c = ln(s/kt_min²) that sizes the bin layout."""
        return 2.0 * math.log(self.sqrt_s / self.kt_min_floor)

    @property
    def bins_per_side(self) -> int:
        """Static number of rapidity bins on each side of a triangle's centre bin."""
        return int(math.floor(self.max_height / (2.0 * self.delta_y_min) + 0.5))

    def radiator(self, fold: bool) -> float | Float[Array, ""]:
        """Density coefficient: `a/κ` per (dy dκ) with `a = C·12/(33−2n_f)` (running; C = C_F
        for the q q̄ triangle, C_A/2 for gluon folds), or `C α_s/π` (frozen)."""
        c = C_A / 2.0 if fold else C_F
        if self.frozen_coupling:
            return c * self.alpha_s / jnp.pi
        return c * 12.0 / (33.0 - 2.0 * self.n_flavours)


def z_flavour_weights(n_flavours: int, sw2: float = 0.2312) -> np.ndarray:
    """LO Z → q q̄ branching weights ∝ v_q² + a_q² for d, u, s, c, b, t (first n_f)."""
    charges = [-1 / 3, 2 / 3, -1 / 3, 2 / 3, -1 / 3, 2 / 3]
    t3 = [-0.5, 0.5, -0.5, 0.5, -0.5, 0.5]
    w = np.array([(t - 2 * q * sw2) ** 2 + t**2 for q, t in zip(charges, t3)])[:n_flavours]
    return w / w.sum()
