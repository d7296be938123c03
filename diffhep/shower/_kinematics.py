"""From Lund-plane emissions to four-momenta: colour order, dipoles and recoil.

**Colour order.** Every parton has a lexicographic key built from its ancestry:
a gluon of the q q̄ triangle sits at its rapidity y; the emissions in the fold of a
gluon g sit next to g, those with fold rapidity y_f > 0 on g's left (they belong to
the dipole on g's left; the fold's outer edge y_f → +(κ_g − κ)/2 is collinear to g)
and those with y_f < 0 on its right. The chain q … q̄ is the partons sorted by key.

**Order of emission.** Emissions are applied in decreasing κ (k⊥ ordering). An
emission is radiated by the dipole formed by its two neighbours in the chain among
the partons already present.

**Rapidity in the emitting dipole.** In the Lund plane an emission at height κ sits
at distances D_a and D_b from the collinear edges of its dipole's two partons; D_a
and D_b sum over the triangle and fold segments that lie between them (a neighbour
gluon contributes its fold half (κ_g − κ)/2). With r = D_a/(D_a + D_b) the emission
gets dipole-frame rapidity y_d = (2r − 1) Y_d(κ), where Y_d = arccosh(√s_d/(2k⊥)) is the
exact edge of three-body phase space (s_ag + s_gb ≤ s_d) of the actual dipole of
mass² s_d. For the first emission this is y_d = y Y_d/Y_tri (Y_tri = (L − κ)/2), whose
Jacobian is reweighted away (see `_shower`). Points never leave phase space.

**Recoil.** In the dipole rest frame, s_ag = k⊥ √s_d e^{y_d}, s_gb = k⊥ √s_d e^{−y_d} fix the
energy fractions x_a, x_b, x_g. The acollinearity ψ = π − θ_ab of the two old partons
is shared smoothly: a turns away from the dipole axis by ψ x_b²/(x_a² + x_b²), b by the
rest (Kleiss's "the harder parton keeps its direction", made continuous), and the
gluon sits at azimuth φ around the axis. Then everything is boosted back. Each step
conserves four-momentum exactly and keeps all partons massless.

**Cutoff.** k⊥² = Λ² e^κ · smoothstep((κ − κ_c)/softness), so an emission that
appears at the cutoff appears with zero momentum, keeping events continuous in the
parameters.
"""

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._safe import safe_div, safe_sqrt
from ..kinematics import boost_from_rest_frame, boost_to_rest_frame, mass2, rotation_to_z

# Keys: root rapidities |y| < L/2 < _BIG0; fold coordinates |y_f| < κ/2 < _BIG.
_BIG0 = 1e4
_BIG = 1e3
LOG4 = 2.0 * math.log(2.0)


def smoothstep(x: Array) -> Array:
    """C¹ step: 0 for x ≤ 0, 3x² − 2x³ on [0, 1], 1 for x ≥ 1."""
    x = jnp.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def keys_from_coords(coord: Array, depth: Array) -> Array:
    """Lexicographic colour-order keys `(..., D)` from row coordinates and depth."""
    levels = jnp.broadcast_to(jnp.arange(coord.shape[-1]), coord.shape)
    folded = coord - _BIG * jnp.sign(coord)
    k = jnp.where(levels == 0, coord, folded)
    return jnp.where(levels < depth[..., None], k, 0.0)


def lex_less(keys: Array, key: Array) -> Array:
    """`keys[i] < key` lexicographically, for `keys (P, D)` and `key (D,)`."""
    diff = keys != key[None, :]
    first = jnp.argmax(diff, axis=-1)
    a = jnp.take_along_axis(keys, first[:, None], axis=-1)[:, 0]
    b = key[first]
    return jnp.any(diff, axis=-1) & (a < b)


def lund_distance(x: dict, z: dict, kappa: Array) -> Array:
    """Lund-plane distance at height κ from parton `x` to parton `z` on its right.

    Each parton is a dict of `key (D,)`, `coord (D,)`, `owner (D,)` (triangle bases),
    `depth`, and `fold` (its own fold half (κ_p − κ)/2, or 0 for quarks and for the
    emission being placed).
    """
    levels = jnp.arange(x["key"].shape[0])
    m = jnp.argmax(x["key"] != z["key"])
    owner = jnp.where(z["depth"] > m, z["owner"][m], x["owner"][m])
    edge = 0.5 * (owner - kappa)
    u_x = jnp.where(x["depth"] > m, x["coord"][m], -edge)
    u_z = jnp.where(z["depth"] > m, z["coord"][m], edge)
    deeper_x = (levels > m) & (levels < x["depth"])
    deeper_z = (levels > m) & (levels < z["depth"])
    exit_x = jnp.where(x["depth"] > m, x["fold"], 0.0) - jnp.sum(jnp.where(deeper_x, x["coord"], 0.0))
    entry_z = jnp.where(z["depth"] > m, z["fold"], 0.0) + jnp.sum(jnp.where(deeper_z, z["coord"], 0.0))
    return exit_x + (u_z - u_x) + entry_z


def dipole_emission(
    pa: Array, pb: Array, kt: Array, yd: Array, phi: Array
) -> tuple[Array, Array, Array, Array, Array]:
    """Split the massless dipole (a, b) into (a', g, b') (see module docs).

    **Arguments:** `pa`, `pb` four-momenta (GeV); `kt` the gluon's k⊥ (GeV) with
    `2 kt cosh(yd) ≤ √s_d`; `yd` its rapidity in the dipole frame (positive: towards b);
    `phi` its azimuth. A dipole of vanishing mass is returned unchanged with a
    zero-momentum gluon.

    **Returns:** `(pa', pg, pb', x_a, x_b)`; momentum is conserved exactly.
    """
    q_raw = pa + pb
    # A dipole of vanishing mass (two exactly collinear partons) cannot radiate: keep
    # it unchanged and give the gluon zero momentum (double-where keeps it NaN-free).
    # "Vanishing" is relative to the precision: the boost to the dipole frame needs
    # 1 − β² = m²/E² well above round-off (float32: m ≳ 0.01 E, below the 2 k⊥,min
    # that any emission needs at LEP energies; float64: m ≳ 1e-6 E).
    tiny = max(1e-12, 1e3 * float(jnp.finfo(q_raw.dtype).eps))
    ok = mass2(q_raw) > tiny * q_raw[0] ** 2
    q = jnp.where(ok, q_raw, jnp.array([1.0, 0.0, 0.0, 0.0], q_raw.dtype))
    pa_in, pb_in = pa, pb
    pa = jnp.where(ok, pa, jnp.array([0.5, 0.0, 0.0, 0.5], q_raw.dtype))
    pb = jnp.where(ok, pb, jnp.array([0.5, 0.0, 0.0, -0.5], q_raw.dtype))
    kt = jnp.where(ok, kt, 0.0)
    sd = mass2(q)
    rs = safe_sqrt(sd)
    s_ag = kt * rs * jnp.exp(yd)
    s_gb = kt * rs * jnp.exp(-yd)
    xa = 1.0 - safe_div(s_gb, sd)
    xb = 1.0 - safe_div(s_ag, sd)
    xg = 2.0 - xa - xb
    ea, eb = 0.5 * xa * rs, 0.5 * xb * rs
    # sin²(θ_ab/2) = s_ab/(4 E_a E_b) = (1 − x_g)/(x_a x_b)
    sin2 = jnp.clip(safe_div(1.0 - xg, xa * xb), 0.0, 1.0)
    theta_ab = 2.0 * jnp.arctan2(safe_sqrt(sin2), safe_sqrt(1.0 - sin2))
    psi = jnp.pi - theta_ab
    wa = safe_div(xb**2, xa**2 + xb**2, default=0.5)
    alpha = psi * wa
    beta = psi - alpha

    pa_rest = boost_to_rest_frame(pa, q)
    rot = rotation_to_z(pa_rest[1:])  # rot @ n = z
    n = rot[2]
    e1, e2 = rot[0], rot[1]
    e_phi = jnp.cos(phi) * e1 + jnp.sin(phi) * e2
    a3 = ea * (jnp.cos(alpha) * n - jnp.sin(alpha) * e_phi)
    b3 = eb * (-jnp.cos(beta) * n - jnp.sin(beta) * e_phi)
    g3 = -(a3 + b3)
    eg = rs - ea - eb
    new = jnp.stack(
        [
            jnp.concatenate([ea[None], a3]),
            jnp.concatenate([eg[None], g3]),
            jnp.concatenate([eb[None], b3]),
        ]
    )
    new = boost_from_rest_frame(new, q)
    zero = jnp.zeros_like(pa_in)
    return (
        jnp.where(ok, new[0], pa_in),
        jnp.where(ok, new[1], zero),
        jnp.where(ok, new[2], pb_in),
        jnp.where(ok, xa, 1.0),
        jnp.where(ok, xb, 1.0),
    )


def half_width(log_sd: Array, kappa: Array) -> Array:
    """Y_d(κ) = arccosh(e^{(L_d − κ)/2}/2): the exact rapidity edge of three-body phase
    space at k⊥ = Λ e^{κ/2} in a dipole with ln(s_d/Λ²) = L_d; 0 where it is closed."""
    z = jnp.exp(0.5 * (log_sd - kappa)) / 2.0
    open_ = z > 1.0
    zs = jnp.where(open_, z, 2.0)
    return jnp.where(open_, jnp.log(zs + safe_sqrt(zs * zs - 1.0)), 0.0)
