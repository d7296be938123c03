"""A differentiable toy detector for e+e- collisions: solenoid tracker + sampling ECAL.

**Design.** `DetectorParams` holds the design (B, lever arm, hit resolution, tracker
material, calorimeter depth in X0, sampling fraction, cell size in η–φ, |η|
coverage) as differentiable leaves; what fixes shapes is static.

**Charged/neutral assignment for shower partons.** A parton shower has no hadrons, so
each parton of energy E stands for the hadrons of its jet fragment: a fraction
`charged_fraction` = 0.65 of its four-momentum is carried by charged hadrons, measured
as one track along the parton; the rest, (1 − 0.65) E, is neutral and measured as one
electromagnetic cluster (photons from π⁰; the ≈10% in neutral hadrons is folded in).
The fractions are those of jets at LEP/LHC (≈ 65% charged, 25% photons, 10% neutral
hadrons). Quarks give tracks of charge sign(pdg); a gluon's track charge alternates
with its slot (only bookkeeping needs a sign).

**Response** (`respond`, or `respond_with_noise` for given ε — every draw is written
g(params, ε) so that derivatives are pathwise):
- Tracks: pT smeared by Gluckstern ⊕ multiple scattering (`track_resolution`);
  accepted with σ((η_max − |η|)/0.05) · σ((pT − pT_min)/0.05 GeV), pT_min = 0.3 B L/2
  (the track must reach the outer layer).
- Clusters: energy smeared by a/√E ⊕ b ⊕ c/E (`calo_resolution_terms` gives how a, b,
  c follow from the design), direction by Δ/√12 ⊕ (R_M/R)/√E; accepted with the η
  sigmoid and σ((E − 3c)/0.05 GeV).
- Image (optional): both parts' calorimeter energy deposited as Gaussians on a fixed
  fine η–φ grid. **Cell-size relaxation:** cells of size Δ are not rebinned (that would
  change shapes); a cell's quantisation is replaced by a Gaussian blur of the same
  variance, Δ²/12, added to the lateral shower width. Cell count and noise use Δ.
- `particle_shower`: one photon's shower in (layer, η, φ) cells with a gamma
  longitudinal profile truncated at the depth and a lateral profile, both fluctuated.

All acceptance cuts are sigmoids of stated slope (`acceptance`); the hard cut is the
limit slope → 0.
"""

from ._params import (
    BOX as BOX,
    LEAVES as LEAVES,
    UNITS as UNITS,
    DetectorParams as DetectorParams,
    acceptance as acceptance,
    calo_radius as calo_radius,
    calo_resolution as calo_resolution,
    calo_resolution_terms as calo_resolution_terms,
    cluster_angular_resolution as cluster_angular_resolution,
    cluster_energy_threshold as cluster_energy_threshold,
    containment as containment,
    cost as cost,
    n_cells as n_cells,
    profile_shape as profile_shape,
    track_pt_threshold as track_pt_threshold,
    track_resolution as track_resolution,
)
from ._response import (
    DetectorNoise as DetectorNoise,
    Reconstruction as Reconstruction,
    draw_noise as draw_noise,
    particle_shower as particle_shower,
    respond as respond,
    respond_with_noise as respond_with_noise,
)
