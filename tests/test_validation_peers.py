"""Validation against programs no one here wrote: Pythia 8 (`pythia8mc`) for thrust
and sphericity, fastjet for the Durham y23.

Events: 300 e+e- → γ*/Z → q q̄ (q = d, u, s, c, b) at √s = 91.1876 GeV from Pythia 8
at parton level (shower on, hadronisation off), generated once per module with a
fixed seed. The final-state partons (and shower photons) go into padded arrays.
Pythia's `Thrust()` and `Sphericity()` analyse the event record directly; their
default selection (`select = 2`) takes the visible final-state particles, which we
mirror. All three algorithms are exact in float64, so we demand agreement to
`TOL` = 1e-12 per event (absolute for T and S, relative for y23): far below the
1e-6 at which an algorithmic difference would show, with room only for round-off.
Measured at this seed: |ΔT| ≤ 6e-16, |ΔS| ≤ 8e-15 (Pythia solves the sphericity
eigenvalues with a closed-form cubic), |Δy23|/y23 ≤ 5e-14.
"""

import fastjet
import jax
import numpy as np
import pythia8mc
import pytest

from diffhep import observables as O
from diffhep.fit._pythia import PYTHIA_PARTON_LEVEL

N_EVENTS = 300
SEED = 20261125
TOL = 1e-12

# The project's one definition of Pythia 8 e+e- → Z → q q̄ at parton level.
SETTINGS = [*PYTHIA_PARTON_LEVEL, "Beams:eCM = 91.1876", "Random:setSeed = on"]


@pytest.fixture(scope="module")
def events():
    return generate(N_EVENTS, SEED)


def generate(n_events, seed):
    """Padded momenta `(n_events, capacity, 4)`, mask, and Pythia's thrust, thrust axis
    and sphericity per event, analysed while each event is in the record."""
    pythia = pythia8mc.Pythia("", False)  # no banner
    for line in SETTINGS + [f"Random:seed = {seed}"]:
        assert pythia.readString(line), line
    assert pythia.init()
    thrust, sphericity = pythia8mc.Thrust(), pythia8mc.Sphericity()
    particles, ref = [], {"thrust": [], "axis": [], "sphericity": []}
    while len(particles) < n_events:
        assert pythia.next()
        event = pythia.event
        final = [p for p in event if p.isFinal()]
        # Pythia's default selection (select = 2) drops invisible particles; none
        # (neutrinos) can appear here, so "visible final" = "final".
        assert all(p.isVisible() for p in final)
        assert thrust.analyze(event) and sphericity.analyze(event)
        particles.append([(p.e(), p.px(), p.py(), p.pz()) for p in final])
        ref["thrust"].append(thrust.thrust())
        axis = thrust.eventAxis(1)
        ref["axis"].append((axis.px(), axis.py(), axis.pz()))
        ref["sphericity"].append(sphericity.sphericity())
    capacity = max(len(p) for p in particles)
    momenta = np.zeros((n_events, capacity, 4))
    mask = np.zeros((n_events, capacity), bool)
    for i, p in enumerate(particles):
        momenta[i, : len(p)] = p
        mask[i, : len(p)] = True
    return momenta, mask, {k: np.array(v) for k, v in ref.items()}


def test_sample_is_a_parton_shower(events):
    momenta, mask, ref = events
    counts = mask.sum(-1)
    # A parton shower, not just q q̄: most events have radiated, some a lot.
    assert counts.min() >= 2 and np.mean(counts) > 6 and counts.max() > 15
    # Four-momentum conservation in every event (e+e- at rest).
    total = np.sum(momenta, axis=1)
    np.testing.assert_allclose(total[:, 0], 91.1876, rtol=1e-10)
    np.testing.assert_allclose(total[:, 1:], 0.0, atol=1e-9)
    assert 0.0 < np.mean(1 - ref["thrust"]) < 0.2


def test_thrust_against_pythia(events):
    momenta, mask, ref = events
    t, axis = jax.jit(O.thrust_and_axis)(momenta, mask)
    np.testing.assert_allclose(t, ref["thrust"], rtol=0, atol=TOL)
    # Same axis up to its (conventional) sign.
    np.testing.assert_allclose(np.abs(np.sum(axis * ref["axis"], -1)), 1.0, rtol=0, atol=TOL)


def test_sphericity_against_pythia(events):
    momenta, mask, ref = events
    s = jax.jit(O.sphericity)(momenta, mask)
    np.testing.assert_allclose(s, ref["sphericity"], rtol=0, atol=TOL)


def test_durham_y23_against_fastjet(events):
    momenta, mask, _ = events
    jet_def = fastjet.JetDefinition0Param(fastjet.ee_kt_algorithm)
    ref = []
    for p, m in zip(momenta, mask):
        jets = [fastjet.PseudoJet(px, py, pz, e) for e, px, py, pz in p[m]]
        ref.append(fastjet.ClusterSequence(jets, jet_def).exclusive_ymerge(2))
    ref = np.array(ref)
    assert np.mean(ref > 0) > 0.9  # nearly all events have three or more partons
    y = jax.jit(O.durham_y23)(momenta, mask)
    np.testing.assert_allclose(y, ref, rtol=TOL, atol=1e-15)
