"""diffhep.me: discrete symmetries, time reversal, and the soft and collinear limits.

Every check is exact in the limit it states; tolerances are float64 round-off
(1e-12 relative) for symmetries and a stated O(λ) approach for limits. Batches
of 4 events reuse the compilations of `test_me.py` (same process, same shape).

- Relabellings that hold for the spin- and colour-summed |M|²: Bose symmetry of
  the incoming gluons; C (particle ↔ antiparticle momenta) for QCD processes and
  for the unpolarised 2 → 2 ones (their P-odd part would need ε(p1, p2, p3, p4),
  which vanishes with three independent momenta); P, tested as the mirror
  x → −x (parity times a rotation by π about x, which keeps the beams on the z
  axis where HELAS's gluon polarisations have fixed phases); CP for the decay
  chain, whose W vertices violate P; and time reversal with lepton universality
  (e+ e- > mu+ mu- read backwards is itself) or flavour-blind massless QCD
  (u u~ > d d~ read backwards is d d~ > u u~ = u u~ > d d~ relabelled).
- Two relabellings that must *not* hold, so that the tests can fail: the tree-level
  t t̄ charge asymmetry of u u~ > t t~ g, and P in the decay chain.
- Soft limit (Catani & Seymour, hep-ph/9605323, §5; massive legs: Catani,
  Dittmaier, Seymour & Trócsányi, hep-ph/0201036): |M_{n+1}|² → −g_s² Σ_{i,j}
  ⟨B|T_i·T_j|B⟩ (p_i·p_j) / ((p_i·k)(p_j·k)), with the colour-correlated Born
  computed here from SU(3) generators and our own Born colour-flow amplitudes.
- Initial-state collinear limit (Catani & Seymour, eq. 5.145): a gluon collinear to
  the incoming u carrying 1 − x of its momentum gives |M_{n+1}|² →
  8π α_s C_F (1 + x²) / (x (1 − x) 2 p_u·k) |M_n(x p_u, …)|².
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_me import M_TOP, boost_matrix, decay_chain_point, gg_ttg_on_shell, two_to_two

import diffhep.me as me
from diffhep.me import _qcd
from diffhep.me._process import helicity_amplitudes

DECAY_CHAIN = "g g > t t~, t > b u d~, t~ > b~ d u~"
MIRROR = np.diag([1.0, -1.0, 1.0, 1.0])  # x -> -x: parity followed by a rotation by pi about x


@pytest.fixture(scope="module")
def params():
    return me.SMParameters.from_param_card()


def _points(process: str, rng, n: int = 4) -> np.ndarray:
    """`(n, n_external, 4)` on-shell momenta (off-shell tops and Ws for the decay chain)."""
    if process in ("g g > t t~ g", "u u~ > t t~ g"):
        return np.stack([gg_ttg_on_shell(rng, rng.uniform(600, 2000)) for _ in range(n)])
    if process == DECAY_CHAIN:
        return np.stack([decay_chain_point(rng) for _ in range(n)])
    mass = M_TOP if "t" in process.split(">")[1] else 0.0
    return np.stack(
        [two_to_two(rng.uniform(400, 2000), rng.uniform(-1, 1), mass, rng.uniform(0, 2 * np.pi)) for _ in range(n)]
    )


# (process, name, particle order after the relabelling, mirror x -> -x?)
SYMMETRIES = [
    ("e+ e- > mu+ mu-", "C", (1, 0, 3, 2), False),
    ("e+ e- > mu+ mu-", "P", (0, 1, 2, 3), True),
    ("e+ e- > mu+ mu-", "T", (2, 3, 0, 1), False),
    ("u u~ > d d~", "T", (2, 3, 0, 1), False),
    ("u u~ > d d~", "C", (1, 0, 3, 2), False),
    ("u u~ > t t~", "C", (1, 0, 3, 2), False),
    ("u u~ > t t~", "P", (0, 1, 2, 3), True),
    ("b b~ > t t~", "C", (1, 0, 3, 2), False),
    ("g g > t t~", "C", (0, 1, 3, 2), False),
    ("g g > t t~", "P", (0, 1, 2, 3), True),
    ("g g > t t~ g", "C", (0, 1, 3, 2, 4), False),
    ("g g > t t~ g", "P", (0, 1, 2, 3, 4), True),
    ("u u~ > t t~ g", "C", (1, 0, 3, 2, 4), False),
    ("u u~ > t t~ g", "P", (0, 1, 2, 3, 4), True),
    ("u u~ > t t~ g", "Bose-free swap of the tops (charge asymmetry)", (0, 1, 3, 2, 4), False),
    (DECAY_CHAIN, "Bose (incoming gluons)", (1, 0, 2, 3, 4, 5, 6, 7), False),
    # CP: b <-> b~, u <-> u~, d <-> d~ at mirrored momenta: the new b is the old b~, ...
    (DECAY_CHAIN, "CP", (0, 1, 5, 7, 6, 2, 4, 3), True),
    (DECAY_CHAIN, "P (violated by the W vertices)", (0, 1, 2, 3, 4, 5, 6, 7), True),
]
BROKEN = {"Bose-free swap of the tops (charge asymmetry)": 1e-2, "P (violated by the W vertices)": 1e-6}


@pytest.mark.parametrize("process, name, order, mirror", SYMMETRIES, ids=[f"{s[0]}|{s[1]}" for s in SYMMETRIES])
def test_relabelling_symmetry(params, rng, process, name, order, mirror):
    # With the physical top width (Γ_t ≠ 0): relabellings and the mirror map HELAS's
    # helicity states into each other up to phases, so they hold even where the width
    # breaks gauge invariance. Achieved ≤ 1e-14 where they hold.
    momenta = _points(process, rng)
    transformed = momenta[:, list(order)]
    if mirror:
        transformed = transformed @ MIRROR
    before = np.asarray(me.matrix_element(process, momenta, params))
    after = np.asarray(me.matrix_element(process, transformed, params))
    if name in BROKEN:
        # Not a symmetry: the test above would see it (measured: 0.7 and 1.5e-4).
        assert np.max(np.abs(after / before - 1)) > BROKEN[name]
    else:
        np.testing.assert_allclose(after, before, rtol=1e-12, atol=0)


# ------------------------------------------------------------- soft limit
def _colour_operators(tensors: list[np.ndarray], kinds: str):
    """Colour-charge operators `T_i^a` acting on index `i` of colour tensors.

    `kinds[i]` is ``q`` (a fundamental index: `T^a` or `−T^aᵀ`) or ``g`` (an adjoint
    index: `±i f^{cab}`). The sign of each leg (incoming/outgoing, quark/antiquark)
    is the one for which colour is conserved, `Σ_i T_i^a |c⟩ = 0` for every `a`;
    returns the functions `op(C, a)` per leg.
    """
    t = _qcd._gell_mann()
    f = np.real(-2j * (np.einsum("aij,bjk,cki->abc", t, t, t) - np.einsum("bij,ajk,cki->abc", t, t, t)))

    def make(axis, kind, sign):
        def op(c, a):
            m = (t[a] if sign > 0 else -t[a].T) if kind == "q" else sign * 1j * f[:, a, :]
            return np.moveaxis(np.tensordot(m, c, axes=([1], [axis])), 0, axis)

        return op

    for signs in itertools.product((1, -1), repeat=len(kinds)):
        ops = [make(axis, kind, s) for axis, (kind, s) in enumerate(zip(kinds, signs))]
        if all(np.max(np.abs(sum(op(c, a) for op in ops))) < 1e-14 for c in tensors for a in range(8)):
            return ops
    raise AssertionError("no sign choice conserves colour")


def _colour_correlations(tensors: list[np.ndarray], kinds: str) -> tuple[np.ndarray, np.ndarray]:
    """`K[i, j, x, y] = ⟨c_x|T_i·T_j|c_y⟩` and the colour matrix `⟨c_x|c_y⟩`."""
    ops = _colour_operators(tensors, kinds)
    n = len(kinds)
    k = np.zeros((n, n, len(tensors), len(tensors)), dtype=complex)
    for a in range(8):
        charged = [[op(c, a) for c in tensors] for op in ops]
        for i, j in itertools.product(range(n), repeat=2):
            k[i, j] += np.array([[np.vdot(x, y) for y in charged[j]] for x in charged[i]])
    return k, np.array([[np.vdot(x, y) for y in tensors] for x in tensors])


def _mdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 0] - np.sum(a[..., 1:] * b[..., 1:], -1)


def _tops(total: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """On-shell t, t~ back to back along `direction` in the rest frame of `total`."""
    mass = math.sqrt(_mdot(total, total))
    p = math.sqrt(mass**2 / 4 - M_TOP**2)
    lam = boost_matrix(total[1:] / total[0]) if np.any(total[1:]) else np.eye(4)
    return lam @ np.array([mass / 2, *(p * direction)]), lam @ np.array([mass / 2, *(-p * direction)])


def _soft_events(sqrt_s: float, k_hat, top_hat, energies) -> np.ndarray:
    """`(len(energies), 5, 4)`: beams, t, t~ and a gluon of energy E along `k_hat`;
    the t t~ pair takes the recoil, with a fixed direction in its rest frame."""
    e = sqrt_s / 2
    beams = np.array([[e, 0, 0, e], [e, 0, 0, -e]])
    out = []
    for energy in energies:
        k = energy * np.array([1.0, *k_hat])
        out.append(np.stack([*beams, *_tops(beams.sum(0) - k, top_hat), k]))
    return np.stack(out)


@pytest.mark.parametrize("process", ["g g > t t~ g", "u u~ > t t~ g"])
def test_soft_gluon_limit(params, process):
    # Γ_t = 0: a width regulates the top propagators 1/(2 p_t·k + i M Γ) and removes
    # the soft singularity of emissions off the tops below k ~ Γ.
    params = params.replace(WT=0.0)
    born = process.rsplit(" g", 1)[0]
    t = _qcd._gell_mann()
    if born == "g g > t t~":
        # MadGraph's flows: (T^a0 T^a1)_{t t~} (the t-channel diagram, gluon 0 next to
        # the top) and (T^a1 T^a0)_{t t~}; the Born is our own flow amplitudes J_x.
        tensors = [np.einsum("aij,bjk->abik", t, t), np.einsum("bij,ajk->abik", t, t)]
        kinds = "ggqq"
    else:
        # One colour structure: s-channel octet (T^a)_{u~ u} (T^a)_{t t~}.
        tensors = [np.einsum("aji,akl->ijkl", t, t)]
        kinds = "qqqq"
    k_corr, k0 = _colour_correlations(tensors, kinds)
    for i, kind in enumerate(kinds):  # T_i² = C_A = 3 or C_F = 4/3
        np.testing.assert_allclose(k_corr[i, i], (3.0 if kind == "g" else 4 / 3) * k0, rtol=1e-14, atol=1e-14)
    rng = np.random.default_rng(11)
    k_hat, top_hat = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 3)))
    sqrt_s = 1000.0
    born_momenta = _soft_events(sqrt_s, k_hat, top_hat, [0.0])[0, :4]
    amps = np.asarray(jax.jit(lambda p: helicity_amplitudes(me.get_process(born), p, params))(jnp.asarray(born_momenta)))
    proc = me.get_process(born)
    jamps = amps @ np.array(proc.jamp_coefficients).T  # (helicities, flows)
    born_me = float(me.matrix_element(born, born_momenta, params))
    if len(tensors) == 1:
        correlated = (k_corr[:, :, 0, 0] / k0[0, 0]).real * born_me
    else:
        # Our flow amplitudes with the SU(3) colour matrix reproduce the Born.
        assert np.einsum("hx,xy,hy->", jamps.conj(), k0, jamps).real / proc.average == pytest.approx(born_me, rel=1e-12)
        correlated = np.einsum("hx,ijxy,hy->ij", jamps.conj(), k_corr, jamps).real / proc.average
    energies = np.array([1.0, 1e-1, 1e-2, 1e-3])  # GeV, at sqrt(s) = 1 TeV
    events = _soft_events(sqrt_s, k_hat, top_hat, energies)
    full = np.asarray(me.matrix_element(process, events, params))
    p, k = events[:, :4], events[:, 4:5]
    pij = _mdot(p[:, :, None], p[:, None, :])
    pk = _mdot(p, k)
    eikonal = -float(params.G) ** 2 * np.einsum("ij,eij->e", correlated, pij / (pk[:, :, None] * pk[:, None, :]))
    deviation = np.abs(full / eikonal - 1)
    # O(E/√s) corrections: measured 3.1e-4 ... 3.2e-7 (g g) and 4.0e-5 ... 3.8e-8
    # (u u~), one decade per decade of E; round-off takes over only below E ~ 1e-4 GeV.
    assert deviation[-1] < 1e-6
    np.testing.assert_allclose(deviation[1:] / deviation[:-1], 0.1, rtol=0.1)


def test_initial_state_collinear_limit(params):
    # A gluon at angle θ to the incoming u, with energy (1 − x) E_u; the Born is
    # u(x p_u) u~(p_u~) > t t~ with the tops' rest-frame direction held fixed.
    # Γ_t is irrelevant (no soft top propagator); kept at its physical value.
    x, e, phi = 0.7, 500.0, 0.4
    top_hat = np.array([0.3, -0.5, 0.7]) / np.linalg.norm([0.3, -0.5, 0.7])
    beams = np.array([[e, 0, 0, e], [e, 0, 0, -e]])
    thetas = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    events = []
    for theta in thetas:
        k = (1 - x) * e * np.array([1.0, math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta)])
        events.append(np.stack([*beams, *_tops(beams.sum(0) - k, top_hat), k]))
    events = np.stack(events)
    born_beams = np.array([[x * e, 0, 0, x * e], [e, 0, 0, -e]])
    born = np.stack([*born_beams, *_tops(born_beams.sum(0), top_hat)])
    born_me = float(me.matrix_element("u u~ > t t~", born, params))
    full = np.asarray(me.matrix_element("u u~ > t t~ g", events, params))
    alpha_s, c_f = float(params.aS), 4 / 3
    predicted = 8 * math.pi * alpha_s * c_f * (1 + x * x) / (x * (1 - x) * 2 * _mdot(events[:, 0], events[:, 4])) * born_me
    deviation = np.abs(full / predicted - 1)
    # O(θ): measured 5.6e-3, 1.8e-3, 1.9e-4, 1.9e-5.
    assert deviation[-1] < 3e-5
    np.testing.assert_allclose(deviation[-1] / deviation[-2], 0.1, rtol=0.05)
