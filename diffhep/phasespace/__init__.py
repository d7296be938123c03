"""Differentiable phase-space generators: uniforms (and masses) → momenta and a weight.

Normalisation: dΦ_n = (2π)⁴ δ⁴(P − Σp) ∏ d³p_i/((2π)³ 2E_i), so that
∫ f dΦ_n = ∫_{[0,1]^d} f(p(u)) w(u) du and σ = (1/flux) ∫ |M|² dΦ_n.
Momenta are ``(E, px, py, pz)`` in GeV, metric ``(+,-,-,-)``.

- `rambo`: RAMBO (Kleiss, Stirling, Ellis 1986), massless and massive; 4n uniforms.
- `rambo_diet`, `rambo_diet_inverse`: Plätzer's invertible "RAMBO on diet"
  (arXiv:1308.2922); 3n − 4 uniforms.
- `two_body`, `two_body_inverse`: exact 2-body phase space in the CM frame.
- `two_body_decay`, `two_body_decay_inverse`: a moving parent → 2, for decay chains.
- `bw_map`, `bw_map_inverse`: Breit–Wigner mapping of an intermediate mass².
- `massless_volume`: the closed-form massless n-body volume.
- `ttbar_decay_chain`, `ttbar_decay_chain_inverse`: t t̄ → (b u d̄)(b̄ d ū) with
  Breit–Wigner-mapped top and W masses (14 uniforms), invertible.

Every function is per-event and lifted with `vmap` over broadcast leading
dimensions; all are differentiable and work under `jit`.
"""

from ._diet import rambo_diet as rambo_diet, rambo_diet_inverse as rambo_diet_inverse
from ._rambo import massless_volume as massless_volume, rambo as rambo
from ._twobody import (
    bw_map as bw_map,
    bw_map_inverse as bw_map_inverse,
    two_body as two_body,
    two_body_decay as two_body_decay,
    two_body_decay_inverse as two_body_decay_inverse,
    two_body_inverse as two_body_inverse,
)
from ._chain import N_CHAIN as N_CHAIN, ttbar_decay_chain as ttbar_decay_chain, ttbar_decay_chain_inverse as ttbar_decay_chain_inverse
