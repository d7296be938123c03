"""Design parameters of the toy detector and the physical relations derived from them.

Every relation below is stated with its units; `DetectorParams` holds the design
choices, the functions here turn them into resolutions, thresholds and costs. All
are differentiable in the leaves of `DetectorParams`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import gammainc as _gammainc_jax
from jaxtyping import Array, ArrayLike, Float

from .._safe import safe_log, safe_sqrt

# Particle Data Group, "Atomic and nuclear properties" (tungsten, the absorber of the
# ILD/SiD silicon-tungsten ECALs): X0 = 3.504 mm, Molière radius 9.327 mm, critical
# energy 7.97 MeV (e-).
TUNGSTEN_X0_M = 3.504e-3
TUNGSTEN_MOLIERE_M = 9.327e-3
TUNGSTEN_EC_GEV = 7.97e-3
PROFILE_B = 0.5
"""Slope `b` of the longitudinal gamma profile (PDG review "Passage of particles
through matter", eq. for dE/dt; b ≈ 0.5 for heavy absorbers)."""
GLUCKSTERN_MS = 1.43
"""C_N in the multiple-scattering term (Gluckstern's large-N value; not re-checked)."""

LEAVES = (
    "b_field",
    "lever_arm",
    "hit_resolution",
    "material",
    "calo_depth",
    "sampling_fraction",
    "cell_size",
    "eta_max",
)
"""Names of the differentiable design parameters, in a fixed order."""

UNITS = {
    "b_field": "T",
    "lever_arm": "m",
    "hit_resolution": "m",
    "material": "X0",
    "calo_depth": "X0",
    "sampling_fraction": "",
    "cell_size": "eta-phi units",
    "eta_max": "",
}

BOX = {
    "b_field": (0.5, 5.0),
    "lever_arm": (0.3, 2.5),
    "hit_resolution": (2e-6, 2e-4),
    "material": (0.02, 0.3),
    "calo_depth": (3.0, 40.0),
    "sampling_fraction": (0.01, 0.5),
    "cell_size": (0.01, 0.4),
    "eta_max": (0.5, 3.0),
}
"""Default optimisation box of each parameter (`diffhep.design` maps into it)."""


@jax.custom_jvp
def gammainc(a: ArrayLike, x: ArrayLike) -> Array:
    """Regularised lower incomplete gamma P(a, x), differentiable to any order in both
    arguments. JAX's own has no second derivative in `a` (`igamma_grad_a` has no
    rule), which reverse-over-forward design gradients need. Here ∂P/∂x is the exact
    density x^(a−1) e^(−x)/Γ(a) and ∂P/∂a a central difference with step
    ε^(1/3) max(a, 1) (relative error ~ε^(2/3): 1e-11 in float64, 3e-5 in float32)."""
    return _gammainc_jax(a, x)


@gammainc.defjvp
def _gammainc_jvp(primals, tangents):
    a, x = jnp.broadcast_arrays(*map(jnp.asarray, primals))
    da, dx = tangents
    out = gammainc(a, x)
    pos = x > 0
    xs = jnp.where(pos, x, 1.0)
    density = jnp.where(pos, jnp.exp((a - 1.0) * jnp.log(xs) - xs - jax.scipy.special.gammaln(a)), 0.0)
    h = jnp.finfo(out.dtype).eps ** (1.0 / 3.0) * jnp.maximum(a, 1.0)
    d_a = (gammainc(a + h, x) - gammainc(jnp.maximum(a - h, 0.5 * a), x)) / (a + h - jnp.maximum(a - h, 0.5 * a))
    return out, d_a * da + density * dx


def _concrete(x) -> float | None:
    try:
        return float(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return None


class DetectorParams(eqx.Module):
    """Design of a toy general-purpose e+e- detector: solenoid tracker + sampling ECAL.

    **Differentiable leaves** (scalars; defaults resemble the ILD/CLD concepts):
    - `b_field`: solenoid field B in T (default 3.5), > 0.
    - `lever_arm`: tracker lever arm L (outer radius) in m (default 1.5), > 0.
    - `hit_resolution`: single-hit resolution σ_x in m (default 1e-5), > 0.
    - `material`: total tracker material x/X0 (default 0.1), > 0.
    - `calo_depth`: calorimeter depth in radiation lengths X0 (default 24), > 0.
    - `sampling_fraction`: active/total energy fraction f_samp (default 0.1), in (0, 1].
    - `cell_size`: calorimeter cell size Δ in η and in φ (default 0.02), > 0 and
      ≤ 2 `eta_max` (a cell cannot exceed the acceptance).
    - `eta_max`: |η| coverage of tracker and calorimeter (default 2.4), > 0.

    **Static fields** (fix shapes or are not design choices):
    - `n_layers`: tracker layers N in the Gluckstern formula (default 10).
    - `active_thickness_mm`: active-layer thickness d in mm (default 0.5).
    - `constant_term`: intrinsic calorimeter constant term b0 (default 0.005).
    - `cell_noise`: electronic noise per cell in GeV (default 0.01).
    - `calo_gap`: radial gap between tracker and calorimeter in m (default 0.2);
      the calorimeter inner radius is R = L + gap.
    - `charged_fraction`: energy fraction of a parton carried by charged hadrons
      (default 0.65; see `diffhep.detector` for the assignment).
    - `eta_slope`, `energy_slope`: widths of the sigmoid-relaxed acceptance cuts, in
      η units and GeV (default 0.05 and 0.05 GeV). The hard cut is the limit → 0.
    - `noise_sigmas`: cluster energy threshold in units of the noise term (default 3).
    """

    b_field: Float[Array, ""]
    lever_arm: Float[Array, ""]
    hit_resolution: Float[Array, ""]
    material: Float[Array, ""]
    calo_depth: Float[Array, ""]
    sampling_fraction: Float[Array, ""]
    cell_size: Float[Array, ""]
    eta_max: Float[Array, ""]
    n_layers: int = eqx.field(static=True, default=10)
    active_thickness_mm: float = eqx.field(static=True, default=0.5)
    constant_term: float = eqx.field(static=True, default=0.005)
    cell_noise: float = eqx.field(static=True, default=0.01)
    calo_gap: float = eqx.field(static=True, default=0.2)
    charged_fraction: float = eqx.field(static=True, default=0.65)
    eta_slope: float = eqx.field(static=True, default=0.05)
    energy_slope: float = eqx.field(static=True, default=0.05)
    noise_sigmas: float = eqx.field(static=True, default=3.0)

    def __init__(
        self,
        b_field: float | ArrayLike = 3.5,
        lever_arm: float | ArrayLike = 1.5,
        hit_resolution: float | ArrayLike = 1e-5,
        material: float | ArrayLike = 0.1,
        calo_depth: float | ArrayLike = 24.0,
        sampling_fraction: float | ArrayLike = 0.1,
        cell_size: float | ArrayLike = 0.02,
        eta_max: float | ArrayLike = 2.4,
        *,
        n_layers: int = 10,
        active_thickness_mm: float = 0.5,
        constant_term: float = 0.005,
        cell_noise: float = 0.01,
        calo_gap: float = 0.2,
        charged_fraction: float = 0.65,
        eta_slope: float = 0.05,
        energy_slope: float = 0.05,
        noise_sigmas: float = 3.0,
        dtype=None,
    ):
        values = dict(
            b_field=b_field,
            lever_arm=lever_arm,
            hit_resolution=hit_resolution,
            material=material,
            calo_depth=calo_depth,
            sampling_fraction=sampling_fraction,
            cell_size=cell_size,
            eta_max=eta_max,
        )
        if dtype is None:
            dtype = jnp.result_type(float)
        for name, v in values.items():
            setattr(self, name, jnp.asarray(v, dtype))
        self.n_layers = int(n_layers)
        self.active_thickness_mm = float(active_thickness_mm)
        self.constant_term = float(constant_term)
        self.cell_noise = float(cell_noise)
        self.calo_gap = float(calo_gap)
        self.charged_fraction = float(charged_fraction)
        self.eta_slope = float(eta_slope)
        self.energy_slope = float(energy_slope)
        self.noise_sigmas = float(noise_sigmas)

    def __check_init__(self):
        for name in LEAVES:
            if jnp.shape(getattr(self, name)) != ():
                raise ValueError(f"DetectorParams.{name} must be a scalar, got shape {jnp.shape(getattr(self, name))}")
        if self.n_layers < 3:
            raise ValueError(f"n_layers must be >= 3 (a helix needs three points), got {self.n_layers}")
        if not 0.0 < self.charged_fraction < 1.0:
            raise ValueError(f"charged_fraction must be in (0, 1), got {self.charged_fraction}")
        for name in ("eta_slope", "energy_slope"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        self.check_values()

    def check_values(self) -> None:
        """Raise `ValueError` for a design outside physical bounds, naming the parameter
        and its allowed range. Values that are traced (under jit/grad) are skipped."""
        v = {name: _concrete(getattr(self, name)) for name in LEAVES}
        positive = {
            "b_field": "T",
            "lever_arm": "m",
            "hit_resolution": "m",
            "material": "X0",
            "calo_depth": "X0",
            "cell_size": "(eta-phi units)",
            "eta_max": "",
        }
        for name, unit in positive.items():
            x = v[name]
            if x is not None and not (x > 0 and math.isfinite(x)):
                raise ValueError(f"{name}={x} {unit} is outside the allowed range (0, inf)".replace("  ", " "))
        f = v["sampling_fraction"]
        if f is not None and not 0.0 < f <= 1.0:
            raise ValueError(f"sampling_fraction={f} is outside the allowed range (0, 1]")
        c, e = v["cell_size"], v["eta_max"]
        if c is not None and e is not None and c > 2.0 * e:
            raise ValueError(
                f"cell_size={c} is larger than the acceptance: allowed range (0, 2*eta_max] = (0, {2 * e:g}]"
            )


# -- Tracker ------------------------------------------------------------------------


def track_resolution(params: DetectorParams, pt: Float[ArrayLike, "*b"], eta: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """Relative transverse-momentum resolution σ(pT)/pT of a track.

    Gluckstern (NIM 24 (1963) 381) for N equally spaced layers plus multiple scattering
    (PDG review "Particle detectors"), added in quadrature, β = 1:

        σ/pT = σ_x pT / (0.3 B L²) · sqrt(720/(N+4))
             ⊕ 0.0136 / (0.3 B L) · sqrt(C_N x/(X0 sin θ)) · (1 + 0.038 ln(x/(X0 sin θ)))

    with pT in GeV, B in T, L and σ_x in m, C_N = 1.43, sin θ = 1/cosh η.

    **Arguments:** `pt` (GeV) and `eta` of the track, any matching shapes.
    **Returns:** σ(pT)/pT, dimensionless. Differentiable in all inputs and leaves.
    """
    pt = jnp.asarray(pt)
    eta = jnp.asarray(eta)
    p = params
    meas = p.hit_resolution * pt / (0.3 * p.b_field * p.lever_arm**2) * math.sqrt(720.0 / (p.n_layers + 4))
    x = p.material * jnp.cosh(eta)
    ms = 0.0136 / (0.3 * p.b_field * p.lever_arm) * safe_sqrt(GLUCKSTERN_MS * x) * (1.0 + 0.038 * safe_log(x))
    return safe_sqrt(meas**2 + ms**2)


def track_pt_threshold(params: DetectorParams) -> Float[Array, ""]:
    """Smallest pT in GeV of a track that reaches the outer layer: its helix diameter
    2 pT/(0.3 B) must be ≥ L, so pT_min = 0.3 B L / 2 (B in T, L in m)."""
    return 0.15 * params.b_field * params.lever_arm


# -- Calorimeter --------------------------------------------------------------------


def calo_radius(params: DetectorParams) -> Float[Array, ""]:
    """Calorimeter inner radius R = L + gap, in m."""
    return params.lever_arm + params.calo_gap


def moliere_eta_phi(params: DetectorParams) -> Float[Array, ""]:
    """The Molière radius seen from the origin at the calorimeter face, R_M/R, in η–φ
    units (at η = 0)."""
    return TUNGSTEN_MOLIERE_M / calo_radius(params)


def profile_shape(energy: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """Shape parameter `a` of the longitudinal profile dE/dt = E b (bt)^(a−1) e^(−bt)/Γ(a)
    of a photon of `energy` GeV: t_max = (a−1)/b = ln(E/E_c) + 0.5 (PDG review "Passage
    of particles through matter"), floored at t_max = 0 (a ≥ 1) for E ≲ E_c."""
    energy = jnp.asarray(energy)
    t_max = safe_log(energy / TUNGSTEN_EC_GEV, default=-10.0) + 0.5
    # Smooth floor: softplus keeps the gradient continuous near E ~ E_c.
    return 1.0 + PROFILE_B * jax.nn.softplus(4.0 * t_max) / 4.0


def containment(params: DetectorParams, energy: Float[ArrayLike, "*b"], shape_a: Float[ArrayLike, "*b"] | None = None) -> Float[Array, "*b"]:
    """Fraction of a photon shower of `energy` GeV contained in `calo_depth` X0: the
    regularised lower incomplete gamma function P(a, b·depth). Differentiable in the
    depth (and in `a` if given: fluctuated showers pass their own)."""
    a = profile_shape(energy) if shape_a is None else jnp.asarray(shape_a)
    return gammainc(a, PROFILE_B * params.calo_depth)


def calo_resolution_terms(
    params: DetectorParams, energy: Float[ArrayLike, "*b"]
) -> tuple[Float[Array, ""], Float[Array, "*b"], Float[Array, ""]]:
    """The three terms of σ_E/E = a/√E ⊕ b ⊕ c/E (E in GeV), from the design:

    - stochastic a = 0.027 sqrt(d/f_samp) (sampling fluctuations; Fabjan & Gianotti,
      Rev. Mod. Phys. 75 (2003) 1243), d the active-layer thickness in mm;
    - constant b = b0 ⊕ f_leak(E): the mean leakage 1 − P(a, b·depth) is calibrated
      away and its shower-to-shower fluctuation, taken equal to the mean, remains;
    - noise c = σ_cell sqrt(1 + A/Δ²) GeV: the noise of the cells of a cluster of area
      A = π (2 R_M/R)² (95% of the shower) in cells of size Δ².

    **Returns:** `(a, b, c)`; `b` has the shape of `energy`. Differentiable.
    """
    p = params
    a = 0.027 * safe_sqrt(p.active_thickness_mm / p.sampling_fraction)
    leak = 1.0 - containment(p, energy)
    b = safe_sqrt(p.constant_term**2 + leak**2)
    c = p.cell_noise * jnp.sqrt(1.0 + n_cluster_cells_area(p) / p.cell_size**2)
    return a, b, c


def n_cluster_cells_area(params: DetectorParams) -> Float[Array, ""]:
    """Area A = π (2 R_M / R)² of a shower cluster in η–φ units²."""
    return math.pi * (2.0 * moliere_eta_phi(params)) ** 2


def calo_resolution(params: DetectorParams, energy: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """Relative energy resolution σ_E/E = a/√E ⊕ b ⊕ c/E of a photon of `energy` GeV
    (see `calo_resolution_terms`). Differentiable."""
    energy = jnp.asarray(energy)
    a, b, c = calo_resolution_terms(params, energy)
    e = jnp.maximum(energy, 1e-3)  # resolution of a sub-MeV deposit is irrelevant; keep it finite
    return jnp.sqrt(a**2 / e + b**2 + (c / e) ** 2)


def cluster_energy_threshold(params: DetectorParams) -> Float[Array, ""]:
    """Cluster energy threshold in GeV: `noise_sigmas` times the cluster noise c."""
    return params.noise_sigmas * calo_resolution_terms(params, 1.0)[2]


def cluster_angular_resolution(params: DetectorParams, energy: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """Angular resolution of a cluster in η and in φ (each): Δ/√12 (the cell
    quantisation, relaxed to a Gaussian of the same variance) ⊕ (R_M/R)/√(E/GeV)
    (lateral shower fluctuations)."""
    energy = jnp.maximum(jnp.asarray(energy), 1e-3)
    return jnp.sqrt(params.cell_size**2 / 12.0 + moliere_eta_phi(params) ** 2 / energy)


def n_cells(params: DetectorParams) -> Float[Array, ""]:
    """Number of calorimeter cells, 2 η_max · 2π / Δ² (relaxed: not rounded)."""
    return 2.0 * params.eta_max * 2.0 * math.pi / params.cell_size**2


def acceptance(x: Float[ArrayLike, "*b"], cut: Float[ArrayLike, ""], slope: float | Float[ArrayLike, ""]) -> Float[Array, "*b"]:
    """Sigmoid-relaxed cut `x > cut`: σ((x − cut)/slope). The hard step is the limit
    slope → 0 (½ exactly at the cut). Differentiable in `x` and `cut`."""
    return jax.nn.sigmoid((jnp.asarray(x) - jnp.asarray(cut)) / slope)


# -- Cost ---------------------------------------------------------------------------


def cost(params: DetectorParams) -> Float[Array, ""]:
    """Construction cost in units of the default detector's parts (= 3 at the default):

        (B/3.5 T)² (L/1.5 m)³            magnet: stored energy ∝ B² × volume
      + (R/1.7 m)² (depth/24 X0)          calorimeter: absorber ∝ area × depth
      + N_cells / N_cells,default         readout channels (N_cells = 4π η_max/Δ²)

    Differentiable."""
    d = DetectorParams()
    return (
        (params.b_field / d.b_field) ** 2 * (params.lever_arm / d.lever_arm) ** 3
        + (calo_radius(params) / calo_radius(d)) ** 2 * (params.calo_depth / d.calo_depth)
        + n_cells(params) / n_cells(d)
    )
