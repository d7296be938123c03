"""A JAX port of MadGraph's HELAS wavefunctions and ALOHA vertices (``sm`` model).

Conventions are MadGraph's own (HELAS, KEK-91-11; ALOHA, arXiv:1108.2041), so
that our amplitudes agree with MadGraph's helicity by helicity, phases included:

- A fermion or vector wavefunction is a complex array of shape ``(6,)``: entries
  0–1 carry the momentum *flow* as ``(E + i p_z, p_x + i p_y)`` times the sign
  HELAS gives it (``+p·nsv`` for vectors, ``−p·nsf`` for ``ixxxxx``, ``+p·nsf``
  for ``oxxxxx``), entries 2–5 the four spinor or polarisation components in
  HELAS's chiral basis. A scalar has shape ``(3,)``.
- Vertices sum the flows of their inputs; an off-shell (internal) line with
  flow ``f`` has momentum ``P = −f`` and gets the fixed-width denominator
  ``COUP / (P² − M² + i M Γ)``.
- Massive spinors follow HELAS exactly, including for momenta that are not on
  the mass shell (MadGraph's tests feed massless RAMBO momenta to massive tops;
  ``ixxxxx`` then uses ``ω₊ = sqrt(E + |p|)``, ``ω₋ = m/ω₊`` with
  ``|p| = min(E, |p⃗|)``, which is exact only on shell).

Momenta are ``(E, p_x, p_y, p_z)`` in GeV, `(4,)` for one particle or `(4, *batch)`
with events on trailing axes (then wavefunctions are `(6, *batch)`: the events stay
the minor axis, which is what a CPU's vector units want); `jax.vmap` works too. The
inputs of a vertex need only broadcast (helicity axes, see `me._process`).
Helicities (``nhel``) may be traced integers, so that a kernel can be `vmap`-ed over
helicity states. Every function is differentiable in
the momenta, the masses and widths and the couplings; HELAS's special cases
(``p⃗ = 0``, ``p_T = 0``, momenta along −z) are selected with the double-``where``
so that values and gradients stay finite. Wavefunctions are ``complex128`` for
float64 momenta and ``complex64`` for float32.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Complex, Float, Int

from .._safe import safe_div, safe_sqrt

# Events (or any batch) may follow on trailing axes: every routine is elementwise in
# the components, so `(6, *batch)` wavefunctions are as good as `(6,)` ones.
# Wavefunctions of different particles may carry different (broadcastable) helicity
# axes, so the batch shapes of a vertex's inputs need only broadcast.
Wave = Complex[Array, "6 *#batch"]
ScalarWave = Complex[Array, "3 *#batch"]
Amplitude = Complex[Array, "*#batch"]
Momentum = Float[ArrayLike, "4 *batch"]
Coupling = Complex[ArrayLike, ""]
Real = Float[ArrayLike, ""]
Helicity = Int[ArrayLike, ""] | int
Components = tuple[Array, ...]  # a vector or wavefunction unstacked by `_u`
Sign = Int[ArrayLike, ""] | int  # nsf / nsv: ±1, static or traced (externals grouped under vmap)

_SQH = 0.7071067811865476  # sqrt(1/2), as HELAS's `sqh`


# ----------------------------------------------------------------- helpers
def _cplx(re, im=0.0):
    """`re + i·im`, complex64 for float32 inputs and complex128 for float64."""
    re = jnp.asarray(re)
    return re + 1j * jnp.asarray(im, dtype=re.dtype)


def stack_broadcast(xs) -> Array:
    """`stack` of arrays that may broadcast against each other: an off-shell
    wavefunction's components depend on the helicities of all its inputs and its flow
    on none; the calls of a vmapped group depend on different particles' helicities
    (size-1 axes elsewhere). The result has their common shape."""
    return jnp.stack(jnp.broadcast_arrays(*xs))


def _u(x) -> tuple[Array, ...]:
    """The components of `x` along axis 0, as a tuple of arrays.

    `unstack` rather than indexing: its transpose is one `stack`, whereas each
    `x[i]` transposes to a `pad` of the whole array, and the backward pass of a
    vertex then has one fusion per component (compile time of gradients).
    """
    return tuple(jnp.unstack(jnp.asarray(x)))


def _flow_momentum(w) -> tuple[Array, Array, Array, Array]:
    """The real four-vector stored in entries 0–1 of a wavefunction (components)."""
    return (w[0].real, w[1].real, w[1].imag, w[0].imag)


def _dot(a, b) -> Array:
    """Minkowski product `a⁰b⁰ − a⃗·b⃗` (no complex conjugation) of two 4-component sequences."""
    return a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3]


def _slash(v: Array) -> Array:
    """ALOHA's ``γ·v`` as a 4×4 matrix in HELAS's chiral basis.

    Read off MadGraph's generated ``FFV1_0``: the amplitude is
    ``F1[2:] @ _slash(V3[2:]) @ F2[2:]`` times ``−i·COUP``.
    """
    v0, v1, v2, v3 = v[0], v[1], v[2], v[3]
    z = jnp.zeros_like(v0)
    return jnp.stack(
        [
            jnp.stack([z, z, v0 + v3, v1 + 1j * v2]),
            jnp.stack([z, z, v1 - 1j * v2, v0 - v3]),
            jnp.stack([v0 - v3, -v1 - 1j * v2, z, z]),
            jnp.stack([-v1 + 1j * v2, v0 + v3, z, z]),
        ]
    )


def _slash_right(v, f) -> tuple[Array, Array, Array, Array]:
    """``_slash(v) @ f`` written out by components (4 scalars each): XLA fuses
    elementwise arithmetic, whereas batched 4×4 products are slow on CPU."""
    v0, v1, v2, v3 = v[0], v[1], v[2], v[3]
    return (
        (v0 + v3) * f[2] + (v1 + 1j * v2) * f[3],
        (v1 - 1j * v2) * f[2] + (v0 - v3) * f[3],
        (v0 - v3) * f[0] - (v1 + 1j * v2) * f[1],
        (-v1 + 1j * v2) * f[0] + (v0 + v3) * f[1],
    )


def _slash_left(f, v) -> tuple[Array, Array, Array, Array]:
    """``f @ _slash(v)`` written out by components."""
    v0, v1, v2, v3 = v[0], v[1], v[2], v[3]
    return (
        f[2] * (v0 - v3) + f[3] * (-v1 + 1j * v2),
        -f[2] * (v1 + 1j * v2) + f[3] * (v0 + v3),
        f[0] * (v0 + v3) + f[1] * (v1 - 1j * v2),
        f[0] * (v1 + 1j * v2) + f[1] * (v0 - v3),
    )


def _propagator(c, p, mass: Real, width: Real) -> Array:
    """``c / (P² − M (M − iΓ))``: a coupling times the fixed-width Breit–Wigner factor.

    Written as ``c (a − ib) / (a² + b²)`` with ``a = P² − M²``, ``b = MΓ``: one real
    reciprocal, where XLA's complex division scales its operands (Smith's algorithm,
    two divisions and selects) and a loop fusion repeats it for every component it
    multiplies (`_wave`). ``a² + b²`` would overflow only for ``|P²| ≳ 1e154 GeV²``
    (1e19 GeV² in float32). A static massless line (`mass` a Python 0) is ``c / P²``.
    Measured on one core against the complex division: `g g > t t~` 9.8e5 -> 1.08e6/s,
    the decay chain 6.2e5 -> 6.7e5/s, `g g > t t~ g g` 2.84e3 -> 2.98e3/s.
    """
    p2 = _dot(p, p)
    if isinstance(mass, (int, float)) and mass == 0:
        return _times_real(c, 1.0 / p2)
    a = p2 - mass * mass
    b = mass * width
    inv = 1.0 / (a * a + b * b)
    return c * _cplx(a * inv, -b * inv)


def _times_real(c, r) -> Array:
    """``c · r`` for a complex `c` and a real array `r`, without promoting `r` to complex."""
    if isinstance(c, complex):
        return _cplx(c.real * r, c.imag * r)
    return jax.lax.complex(jnp.real(c) * r, jnp.imag(c) * r)


def _pick(cond, a, b):
    """`where(cond, a, b)` for complex or real scalars."""
    return jnp.where(cond, a, b)


def _p3(p: Components) -> Array:
    return safe_sqrt(p[1] ** 2 + p[2] ** 2 + p[3] ** 2)


# ------------------------------------------------------ external wavefunctions
def _ixxxxx_massive(p: Components, fmass, nh: Array, nsf: Sign) -> Array:
    """HELAS ``ixxxxx`` for `fmass != 0` (entries 2–5)."""
    pp = jnp.minimum(p[0], _p3(p))
    at_rest = pp == 0
    # pp == 0: spinors of a particle at rest. We require fmass >= 0, so sqm[0] == sqm[1].
    sqm = safe_sqrt(jnp.abs(fmass))
    ip = (1 + nh) // 2
    im = (1 - nh) // 2
    rest = [ip * sqm, im * nsf * sqm, ip * nsf * sqm, im * sqm]
    # pp != 0
    up = nh == 1
    sf0 = (1 + nsf + (1 - nsf) * nh) * 0.5
    sf1 = (1 + nsf - (1 - nsf) * nh) * 0.5
    omega0 = safe_sqrt(p[0] + pp)
    omega1 = safe_div(fmass, omega0)
    sfomega0 = sf0 * _pick(up, omega1, omega0)  # omega[ip]
    sfomega1 = sf1 * _pick(up, omega0, omega1)  # omega[im]
    pp3 = jnp.maximum(pp + p[3], 0.0)
    chi0 = _cplx(safe_sqrt(safe_div(pp3 * 0.5, pp)))
    chi1 = _pick(
        pp3 == 0,
        _cplx(-nh * jnp.ones_like(pp)),
        safe_div(1.0, safe_sqrt(2.0 * pp * pp3)) * _cplx(nh * p[1], p[2]),
    )
    chi_ip = _pick(up, chi1, chi0)
    chi_im = _pick(up, chi0, chi1)
    moving = [sfomega0 * chi_im, sfomega0 * chi_ip, sfomega1 * chi_im, sfomega1 * chi_ip]
    return jnp.stack([_pick(at_rest, _cplx(r), m) for r, m in zip(rest, moving)])


def _oxxxxx_massive(p: Components, fmass, nh: Array, nhel: Array, nsf: Sign) -> Array:
    """HELAS ``oxxxxx`` for `fmass != 0` (entries 2–5)."""
    pp = jnp.minimum(p[0], _p3(p))
    at_rest = pp == 0
    sqm = safe_sqrt(jnp.abs(fmass))
    ip = -((1 - nh) // 2) * nhel
    im = (1 + nh) // 2 * nhel
    rest = [im * sqm, ip * nsf * sqm, im * nsf * sqm, ip * sqm]
    up = nh == 1
    sf0 = (1 + nsf + (1 - nsf) * nh) * 0.5
    sf1 = (1 + nsf - (1 - nsf) * nh) * 0.5
    omega0 = safe_sqrt(p[0] + pp)
    omega1 = safe_div(fmass, omega0)
    sfomeg0 = sf0 * _pick(up, omega1, omega0)
    sfomeg1 = sf1 * _pick(up, omega0, omega1)
    pp3 = jnp.maximum(pp + p[3], 0.0)
    chi0 = _cplx(safe_sqrt(safe_div(pp3 * 0.5, pp)))
    chi1 = _pick(
        pp3 == 0,
        _cplx(-nh * jnp.ones_like(pp)),
        safe_div(1.0, safe_sqrt(2.0 * pp * pp3)) * _cplx(nh * p[1], -p[2]),
    )
    chi_ip = _pick(up, chi1, chi0)
    chi_im = _pick(up, chi0, chi1)
    moving = [sfomeg1 * chi_im, sfomeg1 * chi_ip, sfomeg0 * chi_im, sfomeg0 * chi_ip]
    return jnp.stack([_pick(at_rest, _cplx(r), m) for r, m in zip(rest, moving)])


def _massless_chi(p: Components, nh: Array, nhel: Array, nsf: Sign, conj: bool) -> tuple[Array, Array]:
    """The two-component spinor of a massless fermion (HELAS ``ixxxxx``/``oxxxxx``)."""
    # HELAS puts a particle exactly along −z in its own branch (sqp0p3 = 0).
    along_minus_z = (p[1] == 0) & (p[2] == 0) & (p[3] < 0)
    sqp0p3 = jnp.where(along_minus_z, 0.0, safe_sqrt(jnp.maximum(p[0] + p[3], 0.0)) * nsf)
    chi0 = _cplx(sqp0p3)
    chi1 = _pick(
        sqp0p3 == 0,
        _cplx(-nhel * safe_sqrt(2.0 * p[0])),
        safe_div(1.0, sqp0p3) * _cplx(nh * p[1], -p[2] if conj else p[2]),
    )
    return chi0, chi1


def ixxxxx(p: Momentum, fmass: Real, nhel: Helicity, nsf: Sign) -> Wave:
    """HELAS ``ixxxxx``: the flowing-in fermion wavefunction ``u`` (or ``v`` for `nsf=-1`).

    **Arguments:**
    - `p`: four-momentum `(E, px, py, pz)` in GeV.
    - `fmass`: fermion mass in GeV (≥ 0). A Python `0.0` selects HELAS's massless
      branch at trace time; an array selects between the branches with `where`.
    - `nhel`: helicity ±1 (may be traced).
    - `nsf`: +1 for an incoming particle, −1 for an outgoing antiparticle (static).

    **Returns:** complex `(6,)`, flow `−p·nsf` in entries 0–1.
    """
    p = _u(p)
    nhel = jnp.asarray(nhel)
    nh = nhel * nsf
    flow = [_cplx(-p[0] * nsf, -p[3] * nsf), _cplx(-p[1] * nsf, -p[2] * nsf)]
    chi0, chi1 = _massless_chi(p, nh, nhel, nsf, conj=False)
    zero = jnp.zeros_like(chi0)
    up = nh == 1
    massless = jnp.stack(
        [_pick(up, zero, chi1), _pick(up, zero, chi0), _pick(up, chi0, zero), _pick(up, chi1, zero)]
    )
    if isinstance(fmass, (int, float)) and fmass == 0:
        spin = massless
    else:
        fmass = jnp.asarray(fmass, dtype=p[0].dtype)
        spin = jnp.where(fmass != 0, _ixxxxx_massive(p, fmass, nh, nsf), massless)
    return jnp.concatenate([jnp.stack(flow), spin])


def oxxxxx(p: Momentum, fmass: Real, nhel: Helicity, nsf: Sign) -> Wave:
    """HELAS ``oxxxxx``: the flowing-out fermion wavefunction ``ū`` (or ``v̄`` for `nsf=-1`).

    **Arguments:** as `ixxxxx`; `nsf` is +1 for an outgoing particle and −1 for
    an incoming antiparticle.

    **Returns:** complex `(6,)`, flow `+p·nsf` in entries 0–1.
    """
    p = _u(p)
    nhel = jnp.asarray(nhel)
    nh = nhel * nsf
    flow = [_cplx(p[0] * nsf, p[3] * nsf), _cplx(p[1] * nsf, p[2] * nsf)]
    chi0, chi1 = _massless_chi(p, nh, nhel, nsf, conj=True)
    zero = jnp.zeros_like(chi0)
    up = nh == 1
    massless = jnp.stack(
        [_pick(up, chi0, zero), _pick(up, chi1, zero), _pick(up, zero, chi1), _pick(up, zero, chi0)]
    )
    if isinstance(fmass, (int, float)) and fmass == 0:
        spin = massless
    else:
        fmass = jnp.asarray(fmass, dtype=p[0].dtype)
        spin = jnp.where(fmass != 0, _oxxxxx_massive(p, fmass, nh, nhel, nsf), massless)
    return jnp.concatenate([jnp.stack(flow), spin])


def vxxxxx(p: Momentum, vmass: Real, nhel: Helicity, nsv: Sign) -> Wave:
    """HELAS ``vxxxxx``: the polarisation vector of an external vector boson.

    **Arguments:**
    - `p`: four-momentum in GeV.
    - `vmass`: mass in GeV (Python `0.0` selects the massless branch statically).
    - `nhel`: helicity −1, +1, or 0 (massive only); may be traced.
    - `nsv`: +1 for an outgoing, −1 for an incoming boson (static).

    **Returns:** complex `(6,)`, flow `+p·nsv`; entries 2–5 are `ε^μ` (`ε*` for
    outgoing bosons, as in HELAS).
    """
    p = _u(p)
    hel = jnp.asarray(nhel).astype(p[0].dtype)
    e, px, py, pz = p[0], p[1], p[2], p[3]
    flow = [_cplx(e * nsv, pz * nsv), _cplx(px * nsv, py * nsv)]
    sign_pz = jnp.where(pz < 0, -1.0, 1.0)

    # Massless: pp = E.
    pt = safe_sqrt(px**2 + py**2)
    has_pt = pt != 0
    pzpt = safe_div(pz, e * pt) * _SQH * hel
    massless = jnp.stack(
        [
            _cplx(jnp.zeros_like(e)),
            _pick(has_pt, _cplx(-px * pzpt, -nsv * safe_div(py, pt) * _SQH), _cplx(-hel * _SQH)),
            _pick(has_pt, _cplx(-py * pzpt, nsv * safe_div(px, pt) * _SQH), _cplx(0.0 * e, nsv * sign_pz * _SQH)),
            _cplx(hel * safe_div(pt, e) * _SQH),
        ]
    )
    if isinstance(vmass, (int, float)) and vmass == 0:
        pol = massless
    else:
        vmass = jnp.asarray(vmass, dtype=p[0].dtype)
        nsvahl = nsv * jnp.abs(hel)
        hel0 = 1.0 - jnp.abs(hel)
        pt2 = px**2 + py**2
        pp = jnp.minimum(e, safe_sqrt(pt2 + pz**2))
        ptm = jnp.minimum(pp, safe_sqrt(pt2))
        at_rest = pp == 0
        has_ptm = ptm != 0
        emp = safe_div(e, vmass * pp)
        pzptm = safe_div(pz, pp * ptm) * _SQH * hel
        massive = jnp.stack(
            [
                _pick(at_rest, _cplx(0.0 * e), _cplx(hel0 * safe_div(pp, vmass))),
                _pick(
                    at_rest | ~has_ptm,
                    _cplx(-hel * _SQH),
                    _cplx(hel0 * px * emp - px * pzptm, -nsvahl * safe_div(py, ptm) * _SQH),
                ),
                _pick(
                    at_rest,
                    _cplx(0.0 * e, nsvahl * _SQH),
                    _pick(
                        has_ptm,
                        _cplx(hel0 * py * emp - py * pzptm, nsvahl * safe_div(px, ptm) * _SQH),
                        _cplx(0.0 * e, nsvahl * sign_pz * _SQH),
                    ),
                ),
                _pick(at_rest, _cplx(hel0), _cplx(hel0 * pz * emp + hel * safe_div(ptm, pp) * _SQH)),
            ]
        )
        pol = jnp.where(vmass != 0, massive, massless)
    return jnp.concatenate([jnp.stack(flow), pol])


def sxxxxx(p: Momentum, nss: Sign) -> ScalarWave:
    """HELAS ``sxxxxx``: an external scalar, complex `(3,)` = (flow, flow, 1)."""
    p = _u(p)
    return jnp.stack([_cplx(p[0] * nss, p[3] * nss), _cplx(p[1] * nss, p[2] * nss), _cplx(jnp.ones_like(p[0]))])


# ------------------------------------------------- fermion–fermion–vector
# Every routine unstacks its wavefunctions once (`_u`) and works on components,
# and stacks its result once: the values are those of the vector formulas, term
# by term, and the gradient has no `pad` per component.


def _wave(flow0, flow1, scale, components) -> Array:
    """An off-shell wavefunction: flow entries, then `scale · component` each
    (`scale` the coupling times the propagator, `_propagator`)."""
    # The propagator factor once per wavefunction, not once per component (a loop
    # fusion would repeat it per element). Measured: without this module's three
    # barriers g g > t t~ runs 1.4x slower and the decay chain 1.65x. They act on
    # XLA's passes before fusion only: a CPU build drops barriers before it fuses (none
    # is left in the optimised HLO, and a current's propagator factor can still sit in
    # its concatenate fusion, once per component).
    scale = jax.lax.optimization_barrier(scale)
    return stack_broadcast([flow0, flow1, *(scale * x for x in components)])


def _ffv_amp(F1, F2, V3, cl, cr) -> Array:
    """``−i F1 · diag(cl, cl, cr, cr) · γ·V3 · F2``: the ALOHA FFV amplitudes.

    FFV1 is `cl = cr = COUP`, FFV2 `(COUP, 0)`, FFV4 `(COUP, 2 COUP)`. Wavefunctions
    as component tuples.
    """
    r = _slash_right(V3[2:], F2[2:])
    return -1j * (cl * (F1[2] * r[0] + F1[3] * r[1]) + cr * (F1[4] * r[2] + F1[5] * r[3]))


def _ffv_current(F1, F2, cl, cr) -> tuple[Array, Array, Array, Array]:
    """``J^μ = F1 · diag(cl, cl, cr, cr) γ^μ · F2`` with the index raised.

    ``γ^μ F2`` for the basis vectors, written out: the terms of `_slash_right` that
    multiply a zero component are dropped (they add an exact zero).
    """
    f0, f1, f2, f3 = F2[2:]
    rows = (
        (f2, f3, f0, f1),  # μ = 0
        (f3, f2, -f1, -f0),  # μ = 1
        (1j * f3, -1j * f2, -1j * f1, 1j * f0),  # μ = 2
        (f2, -f3, -f0, f1),  # μ = 3
    )
    out = []
    for metric, r in zip((1.0, -1.0, -1.0, -1.0), rows):
        j = cl * (F1[2] * r[0] + F1[3] * r[1]) + cr * (F1[4] * r[2] + F1[5] * r[3])
        out.append(j if metric > 0 else -j)
    return tuple(out)


def _ffv_3(F1, F2, cl, cr, M3, W3, transverse_only: bool) -> Array:
    F1, F2 = _u(F1), _u(F2)
    flow = (F1[0] + F2[0], F1[1] + F2[1])
    p3 = tuple(-x for x in _flow_momentum(flow))
    j = _ffv_current(F1, F2, cl, cr)
    if not transverse_only:
        # Unitary-gauge propagator numerator −g^{μν} + P^μ P^ν / M² (OM3 = 0 for M = 0).
        om3 = safe_div(1.0, M3 * M3)
        pj = _dot(p3, j)
        j = tuple(jm - pm * om3 * pj for jm, pm in zip(j, p3))
    return _wave(*flow, _propagator(-1j, p3, M3, W3), j)


def FFV1_0(F1: Wave, F2: Wave, V3: Wave, COUP: Coupling) -> Amplitude:
    """Amplitude of the vector coupling ``γ^μ`` (ALOHA ``FFV1_0``)."""
    return _ffv_amp(_u(F1), _u(F2), _u(V3), COUP, COUP)


def FFV2_0(F1: Wave, F2: Wave, V3: Wave, COUP: Coupling) -> Amplitude:
    """Amplitude of ``γ^μ P_L``-type coupling (ALOHA ``FFV2_0``)."""
    return _ffv_amp(_u(F1), _u(F2), _u(V3), COUP, 0.0)


def FFV4_0(F1: Wave, F2: Wave, V3: Wave, COUP: Coupling) -> Amplitude:
    """Amplitude of ALOHA's ``FFV4`` structure (``γ^μ P_L + 2 γ^μ P_R``)."""
    return _ffv_amp(_u(F1), _u(F2), _u(V3), COUP, 2.0 * COUP)


def FFV2_4_0(F1: Wave, F2: Wave, V3: Wave, COUP1: Coupling, COUP2: Coupling) -> Amplitude:
    """``FFV2_0(COUP1) + FFV4_0(COUP2)``: the Z–fermion vertex of the sm model."""
    return _ffv_amp(_u(F1), _u(F2), _u(V3), COUP1 + COUP2, 2.0 * COUP2)


def FFV1P0_3(F1: Wave, F2: Wave, COUP: Coupling, M3: Real, W3: Real) -> Wave:
    """Off-shell massless vector (γ, g) from two fermions (ALOHA ``FFV1P0_3``)."""
    return _ffv_3(F1, F2, COUP, COUP, M3, W3, transverse_only=True)


def FFV2_4_3(F1: Wave, F2: Wave, COUP1: Coupling, COUP2: Coupling, M3: Real, W3: Real) -> Wave:
    """Off-shell massive vector (Z) from two fermions, unitary gauge (ALOHA ``FFV2_4_3``)."""
    return _ffv_3(F1, F2, COUP1 + COUP2, 2.0 * COUP2, M3, W3, transverse_only=False)


def FFV2_3(F1: Wave, F2: Wave, COUP: Coupling, M3: Real, W3: Real) -> Wave:
    """Off-shell massive vector from ``FFV2`` (ALOHA ``FFV2_3``; W boson)."""
    return _ffv_3(F1, F2, COUP, 0.0, M3, W3, transverse_only=False)


def _ffv_1(F2, V3, COUP, M1, W1, left_only: bool) -> Array:
    F2, V3 = _u(F2), _u(V3)
    flow = (F2[0] + V3[0], F2[1] + V3[1])
    p1 = tuple(-x for x in _flow_momentum(flow))
    x = _slash_right(V3[2:], F2[2:])
    if left_only:
        x = (x[0], x[1], jnp.zeros_like(x[2]), jnp.zeros_like(x[3]))  # P_L
    sx = _slash_right(p1, x)
    num = tuple(M1 * a - b for a, b in zip(x, sx))
    return _wave(*flow, _propagator(COUP * 1j, p1, M1, W1), num)


def _ffv_2(F1, V3, COUP, M2, W2, left_only: bool) -> Array:
    F1, V3 = _u(F1), _u(V3)
    flow = (F1[0] + V3[0], F1[1] + V3[1])
    p2 = tuple(-x for x in _flow_momentum(flow))
    f = F1[2:]
    if left_only:
        f = (F1[2], F1[3], jnp.zeros_like(F1[4]), jnp.zeros_like(F1[5]))  # P_L
    y = _slash_left(f, V3[2:])
    sy = _slash_left(y, p2)
    num = tuple(a + M2 * b for a, b in zip(sy, y))
    return _wave(*flow, _propagator(COUP * 1j, p2, M2, W2), num)


def FFV1_1(F2: Wave, V3: Wave, COUP: Coupling, M1: Real, W1: Real) -> Wave:
    """Off-shell fermion from the `F2` leg and a vector (ALOHA ``FFV1_1``).

    **Returns:** `COUP·i (M − γ·P)(γ·V3) F2 / (P² − M² + iMΓ)` with `P = −flow`.
    """
    return _ffv_1(F2, V3, COUP, M1, W1, left_only=False)


def FFV1_2(F1: Wave, V3: Wave, COUP: Coupling, M2: Real, W2: Real) -> Wave:
    """Off-shell fermion from the `F1` leg and a vector (ALOHA ``FFV1_2``).

    **Returns:** `COUP·i F1 (γ·V3)(γ·P + M) / (P² − M² + iMΓ)` with `P = −flow`.
    """
    return _ffv_2(F1, V3, COUP, M2, W2, left_only=False)


def _charge_conjugate(x) -> tuple[Array, Array, Array, Array]:
    """``C x`` with ``C = iγ²γ⁰`` in HELAS's chiral basis: a signed permutation (exact)."""
    return (x[1], -x[0], -x[3], x[2])


def fermion_current(
    F: Wave, V3: Wave, COUP: Coupling, M: Real, W: Real, conjugate: Bool[ArrayLike, ""], mask: Float[ArrayLike, "4"]
) -> Wave:
    """`FFV1_1`, `FFV1_2`, `FFV2_1` and `FFV2_2` as one routine with data arguments.

    For `conjugate = False` it is ``COUP·i (M − γ·P) diag(mask) (γ·V3) F / den``:
    `FFV1_1` with `mask = 1`, `FFV2_1` with `mask = (1, 1, 0, 0)`. The antifermion
    currents follow from charge conjugation, ``F (γ·V)(γ·P + M) = C (M − γ·P)(γ·V) C F``
    with ``C = iγ²γ⁰``: `conjugate = True` applies `C` to the spinor of `F` and to the
    result, giving `FFV1_2` (`mask = 1`) and `FFV2_2` (`mask = (0, 0, 1, 1)`).
    The mask multiplies by exact ones and zeros, and `C` only permutes and negates,
    so the values are those of the four routines up to the order of the additions.
    One trace serves all four, so that a process `vmap`s them together
    (compile time).
    """
    F, V3 = _u(F), _u(V3)
    spin = F[2:]
    spin = tuple(jnp.where(conjugate, c, s) for c, s in zip(_charge_conjugate(spin), spin))
    flow = (F[0] + V3[0], F[1] + V3[1])
    p1 = tuple(-x for x in _flow_momentum(flow))
    x = _slash_right(V3[2:], spin)
    x = tuple(a * m for a, m in zip(x, _u(mask)))
    sx = _slash_right(p1, x)
    scale = jax.lax.optimization_barrier(_propagator(COUP * 1j, p1, M, W))  # see `_wave`
    out = tuple(scale * (M * a - b) for a, b in zip(x, sx))
    # Stacked behind a barrier before the conjugation select (measured: g g > t t~
    # 5.2e5 -> 7.0e5/s), which otherwise computed both `out[i]` and the component it
    # swaps with at every element. Like the others, the barrier acts before fusion.
    out = _u(jax.lax.optimization_barrier(stack_broadcast(out)))
    out = tuple(jnp.where(conjugate, c, o) for c, o in zip(_charge_conjugate(out), out))
    return stack_broadcast([*flow, *out])


# ------------------------------------------------------------ gauge vertices
def VVV1_0(V1: Wave, V2: Wave, V3: Wave, COUP: Coupling) -> Amplitude:
    """Three-gluon amplitude (ALOHA ``VVV1_0``), all momenta taken from the flows."""
    V1, V2, V3 = _u(V1), _u(V2), _u(V3)
    p1, p2, p3 = _flow_momentum(V1), _flow_momentum(V2), _flow_momentum(V3)
    v1, v2, v3 = V1[2:], V2[2:], V3[2:]
    p21 = tuple(a - b for a, b in zip(p2, p1))
    p13 = tuple(a - b for a, b in zip(p1, p3))
    p32 = tuple(a - b for a, b in zip(p3, p2))
    return 1j * COUP * (_dot(v1, v2) * _dot(p21, v3) + _dot(v1, v3) * _dot(p13, v2) + _dot(v2, v3) * _dot(p32, v1))


def VVV1P0_1(V2: Wave, V3: Wave, COUP: Coupling, M1: Real, W1: Real) -> Wave:
    """Off-shell gluon from two gluons (ALOHA ``VVV1P0_1``; no ``p p/M²`` term)."""
    V2, V3 = _u(V2), _u(V3)
    flow = (V2[0] + V3[0], V2[1] + V3[1])
    p1 = tuple(-x for x in _flow_momentum(flow))
    p2, p3 = _flow_momentum(V2), _flow_momentum(V3)
    v2, v3 = V2[2:], V3[2:]
    d23 = _dot(v2, v3)
    a = _dot(tuple(x - y for x, y in zip(p2, p1)), v3)
    b = _dot(tuple(x - y for x, y in zip(p1, p3)), v2)
    num = tuple(d23 * (q3 - q2) + x2 * a + x3 * b for q2, q3, x2, x3 in zip(p2, p3, v2, v3))
    return _wave(*flow, _propagator(COUP * 1j, p1, M1, W1), num)


def _vvvv_current(V2, V3, V4, COUP, M1, W1, a, b):
    flow = (V2[0] + V3[0] + V4[0], V2[1] + V3[1] + V4[1])
    p1 = tuple(-x for x in _flow_momentum(flow))
    return _wave(*flow, _propagator(COUP * 1j, p1, M1, W1), tuple(x - y for x, y in zip(a, b)))


def _scaled(v, s):
    return tuple(x * s for x in v)


def VVVV1P0_1(V2: Wave, V3: Wave, V4: Wave, COUP: Coupling, M1: Real, W1: Real) -> Wave:
    """Off-shell gluon from the ``VVVV1`` four-gluon structure (ALOHA ``VVVV1P0_1``)."""
    V2, V3, V4 = _u(V2), _u(V3), _u(V4)
    v2, v3, v4 = V2[2:], V3[2:], V4[2:]
    return _vvvv_current(V2, V3, V4, COUP, M1, W1, _scaled(v3, _dot(v2, v4)), _scaled(v4, _dot(v3, v2)))


def VVVV3P0_1(V2: Wave, V3: Wave, V4: Wave, COUP: Coupling, M1: Real, W1: Real) -> Wave:
    """Off-shell gluon from the ``VVVV3`` four-gluon structure (ALOHA ``VVVV3P0_1``)."""
    V2, V3, V4 = _u(V2), _u(V3), _u(V4)
    v2, v3, v4 = V2[2:], V3[2:], V4[2:]
    return _vvvv_current(V2, V3, V4, COUP, M1, W1, _scaled(v2, _dot(v3, v4)), _scaled(v4, _dot(v3, v2)))


def VVVV4P0_1(V2: Wave, V3: Wave, V4: Wave, COUP: Coupling, M1: Real, W1: Real) -> Wave:
    """Off-shell gluon from the ``VVVV4`` four-gluon structure (ALOHA ``VVVV4P0_1``)."""
    V2, V3, V4 = _u(V2), _u(V3), _u(V4)
    v2, v3, v4 = V2[2:], V3[2:], V4[2:]
    return _vvvv_current(V2, V3, V4, COUP, M1, W1, _scaled(v2, _dot(v3, v4)), _scaled(v3, _dot(v2, v4)))


def VVVV1_0(V1: Wave, V2: Wave, V3: Wave, V4: Wave, COUP: Coupling) -> Amplitude:
    """Four-gluon amplitude, ``VVVV1`` structure (ALOHA ``VVVV1_0``)."""
    v1, v2, v3, v4 = (_u(V)[2:] for V in (V1, V2, V3, V4))
    return 1j * COUP * (_dot(v1, v3) * _dot(v2, v4) - _dot(v2, v3) * _dot(v1, v4))


def VVVV3_0(V1: Wave, V2: Wave, V3: Wave, V4: Wave, COUP: Coupling) -> Amplitude:
    """Four-gluon amplitude, ``VVVV3`` structure (ALOHA ``VVVV3_0``)."""
    v1, v2, v3, v4 = (_u(V)[2:] for V in (V1, V2, V3, V4))
    return 1j * COUP * (_dot(v1, v2) * _dot(v3, v4) - _dot(v2, v3) * _dot(v1, v4))


def VVVV4_0(V1: Wave, V2: Wave, V3: Wave, V4: Wave, COUP: Coupling) -> Amplitude:
    """Four-gluon amplitude, ``VVVV4`` structure (ALOHA ``VVVV4_0``)."""
    v1, v2, v3, v4 = (_u(V)[2:] for V in (V1, V2, V3, V4))
    return 1j * COUP * (_dot(v1, v2) * _dot(v3, v4) - _dot(v1, v3) * _dot(v2, v4))


# ------------------------------------------------ beyond MadGraph's sm set
def FFV2_1(F2: Wave, V3: Wave, COUP: Coupling, M1: Real, W1: Real) -> Wave:
    """Off-shell fermion from the `F2` leg and a vector, ``γ^μ P_L`` vertex (ALOHA ``FFV2_1``).

    **Returns:** `COUP·i (M − γ·P) P_L (γ·V3) F2 / (P² − M² + iMΓ)` with `P = −flow`,
    where `P_L` keeps the chirality that `FFV2_0` couples (entries 2–3 of `F1`).
    """
    return _ffv_1(F2, V3, COUP, M1, W1, left_only=True)


def FFV2_2(F1: Wave, V3: Wave, COUP: Coupling, M2: Real, W2: Real) -> Wave:
    """Off-shell fermion from the `F1` leg and a vector, ``γ^μ P_L`` vertex (ALOHA ``FFV2_2``).

    **Returns:** `COUP·i F1 P_L (γ·V3)(γ·P + M) / (P² − M² + iMΓ)` with `P = −flow`.
    """
    return _ffv_2(F1, V3, COUP, M2, W2, left_only=True)


def VVVV_ordered_P0_1(V2: Wave, V3: Wave, V4: Wave, COUP: Coupling, M1: Real, W1: Real) -> Wave:
    """Off-shell gluon from the colour-ordered four-gluon vertex, cyclic order (1, 2, 3, 4).

    The Lorentz structure ``2 g^{13} g^{24} − g^{12} g^{34} − g^{14} g^{23}``
    (= ``VVVV4 − VVVV1`` of ALOHA) that multiplies ``Tr(T^1 T^2 T^3 T^4)`` once
    the ``f f`` colour factors are expanded in traces (Berends–Giele; Dixon,
    hep-ph/9601359), with the sign that makes it pair with ``GC_12 = i g_s²``
    in the rules of `_qcd` (``VVVV1 − VVVV4``).
    """
    V2, V3, V4 = _u(V2), _u(V3), _u(V4)
    v2, v3, v4 = V2[2:], V3[2:], V4[2:]
    d34, d23, d24 = _dot(v3, v4), _dot(v2, v3), _dot(v2, v4)
    a = tuple(x2 * d34 + x4 * d23 for x2, x4 in zip(v2, v4))
    return _vvvv_current(V2, V3, V4, COUP, M1, W1, a, _scaled(_scaled(v3, 2.0), d24))


def ADD(W1: Wave, W2: Wave) -> Wave:
    """The sum of two off-shell wavefunctions of the same line (same momentum flow).

    Keeps the flow of `W1` (entries 0–1) and adds the components (entries 2–5):
    a sum over the diagrams that feed one internal line.
    """
    W1, W2 = _u(W1), _u(W2)
    return stack_broadcast([W1[0], W1[1], *(a + b for a, b in zip(W1[2:], W2[2:]))])
