"""Differentiable discrete-QCD parton shower for e+e- → γ*/Z → q q̄ (see `_shower`)."""

from ._model import (
    ALPHA_S_RANGE as ALPHA_S_RANGE,
    MZ as MZ,
    DiscreteQCD as DiscreteQCD,
    alpha_s_from_lambda as alpha_s_from_lambda,
    lambda_qcd as lambda_qcd,
    running_alpha_s as running_alpha_s,
)
from ._jumps import (
    JumpPartners as JumpPartners,
    jump_partners as jump_partners,
    realize_jvp as realize_jvp,
    realize_with_jumps as realize_with_jumps,
)
from ._shower import (
    OVERFLOW_TOLERANCE as OVERFLOW_TOLERANCE,
    Layout as Layout,
    layout as layout,
    realize as realize,
    ShowerEvent as ShowerEvent,
    sample as sample,
    shower_event as shower_event,
    simulate as simulate,
)
