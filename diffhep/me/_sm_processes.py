"""Process descriptions for the MG5 ``sm`` model (see `_process` for the language).

Each description transcribes the diagrams, colour flows, colour matrix and
averaging factor of MadGraph5_aMC@NLO's standalone CUDA/C++ output for the same
``generate`` string (madgraph5/madgraph4gpu, ``epochX/cudacpp``: the
``ee_mumu.sa``, ``gg_tt.sa`` and ``pp_tt012j.mad`` process directories).
Couplings: ``GC_3 = −ie``, ``GC_10 = −g_s``, ``GC_11 = i g_s``, ``GC_12 = i g_s²``,
``GC_50``/``GC_59`` the Z couplings, ``GC_100`` the W–quark coupling. Particle order is MadGraph's.

``g g > t t~ g g`` (123 diagrams) is generated, not transcribed: see
`generated_processes` and `_qcd`.
"""

from ._process import External, Process
from ._qcd import quark_line_process

EPEM_MUPMUM = """
process: e+ e- > mu+ mu-
externals: o(ZERO,-1) i(ZERO,+1) i(ZERO,-1) o(ZERO,+1)
average: 4
colour_denominators: 1
colour_matrix: 1
# s-channel photon
w4 = FFV1P0_3(w1, w0, GC_3, ZERO, ZERO)
FFV1_0(w2, w3, w4, GC_3) -> -1@0
# s-channel Z
w4 = FFV2_4_3(w1, w0, GC_50, GC_59, MZ, WZ)
FFV2_4_0(w2, w3, w4, GC_50, GC_59) -> -1@0
"""

UUX_DDX = """
process: u u~ > d d~
externals: i(ZERO,+1) o(ZERO,-1) o(ZERO,+1) i(ZERO,-1)
average: 36
colour_denominators: 1 1
colour_matrix: 9 3 / 3 9
w4 = FFV1P0_3(w0, w1, GC_11, ZERO, ZERO)
FFV1_0(w3, w2, w4, GC_11) -> +1/6@0 -1/2@1
"""

UUX_TTX = """
process: u u~ > t t~
externals: i(ZERO,+1) o(ZERO,-1) o(MT,+1) i(MT,-1)
average: 36
colour_denominators: 1 1
colour_matrix: 9 3 / 3 9
w4 = FFV1P0_3(w0, w1, GC_11, ZERO, ZERO)
FFV1_0(w3, w2, w4, GC_11) -> +1/6@0 -1/2@1
"""

BBX_TTX = """
process: b b~ > t t~
externals: i(MB,+1) o(MB,-1) o(MT,+1) i(MT,-1)
average: 36
colour_denominators: 1 1
colour_matrix: 9 3 / 3 9
w4 = FFV1P0_3(w0, w1, GC_11, ZERO, ZERO)
FFV1_0(w3, w2, w4, GC_11) -> +1/6@0 -1/2@1
"""

GG_TTX = """
process: g g > t t~
externals: v(ZERO,-1) v(ZERO,-1) o(MT,+1) i(MT,-1)
average: 256
colour_denominators: 3 3
colour_matrix: 16 -2 / -2 16
# s-channel gluon
w4 = VVV1P0_1(w0, w1, GC_10, ZERO, ZERO)
FFV1_0(w3, w2, w4, GC_11) -> +i@0 -i@1
# t-channel top
w4 = FFV1_1(w2, w0, GC_11, MT, WT)
FFV1_0(w3, w4, w1, GC_11) -> -1@0
# u-channel top
w4 = FFV1_2(w3, w0, GC_11, MT, WT)
FFV1_0(w4, w2, w1, GC_11) -> -1@1
"""

GG_TTXG = """
process: g g > t t~ g
externals: v(ZERO,-1) v(ZERO,-1) o(MT,+1) i(MT,-1) v(ZERO,+1)
average: 256
colour_denominators: 9 9 9 9 9 9
colour_matrix: 64 -8 -8 1 1 10 / -8 64 1 10 -8 1 / -8 1 64 -8 10 1 / 1 10 -8 64 1 -8 / 1 -8 10 1 64 -8 / 10 1 1 -8 -8 64
w5 = VVV1P0_1(w0, w1, GC_10, ZERO, ZERO)
w6 = FFV1P0_3(w3, w2, GC_11, ZERO, ZERO)
VVV1_0(w5, w6, w4, GC_10) -> -1@0 +1@2 +1@4 -1@5
w7 = FFV1_1(w2, w4, GC_11, MT, WT)
FFV1_0(w3, w7, w5, GC_11) -> +i@4 -i@5
w8 = FFV1_2(w3, w4, GC_11, MT, WT)
FFV1_0(w8, w2, w5, GC_11) -> +i@0 -i@2
w5 = FFV1_1(w2, w0, GC_11, MT, WT)
w9 = FFV1_2(w3, w1, GC_11, MT, WT)
FFV1_0(w9, w5, w4, GC_11) -> -1@1
w10 = VVV1P0_1(w1, w4, GC_10, ZERO, ZERO)
FFV1_0(w3, w5, w10, GC_11) -> +i@0 -i@1
FFV1_0(w8, w5, w1, GC_11) -> -1@0
w5 = FFV1_2(w3, w0, GC_11, MT, WT)
w11 = FFV1_1(w2, w1, GC_11, MT, WT)
FFV1_0(w5, w11, w4, GC_11) -> -1@3
FFV1_0(w5, w2, w10, GC_11) -> +i@3 -i@5
FFV1_0(w5, w7, w1, GC_11) -> -1@5
w5 = VVV1P0_1(w0, w4, GC_10, ZERO, ZERO)
FFV1_0(w3, w11, w5, GC_11) -> +i@2 -i@3
FFV1_0(w9, w2, w5, GC_11) -> +i@1 -i@4
VVV1_0(w5, w1, w6, GC_10) -> +1@1 -1@2 +1@3 -1@4
FFV1_0(w8, w11, w0, GC_11) -> -1@2
FFV1_0(w9, w7, w0, GC_11) -> -1@4
VVV1_0(w0, w10, w6, GC_10) -> +1@0 -1@1 -1@3 +1@5
# four-gluon vertex
w10 = VVVV1P0_1(w0, w1, w4, GC_12, ZERO, ZERO)
w6 = VVVV3P0_1(w0, w1, w4, GC_12, ZERO, ZERO)
w9 = VVVV4P0_1(w0, w1, w4, GC_12, ZERO, ZERO)
FFV1_0(w3, w2, w10, GC_11) -> +1@0 -1@1 -1@3 +1@5
FFV1_0(w3, w2, w6, GC_11) -> -1@1 +1@2 -1@3 +1@4
FFV1_0(w3, w2, w9, GC_11) -> -1@0 +1@2 +1@4 -1@5
"""


UUX_TTXG = """
process: u u~ > t t~ g
externals: i(ZERO,+1) o(ZERO,-1) o(MT,+1) i(MT,-1) v(ZERO,+1)
average: 36
colour_denominators: 1 1 1 1
colour_matrix: 12 4 4 0 / 4 12 0 4 / 4 0 12 4 / 0 4 4 12
w5 = FFV1_2(w0, w4, GC_11, ZERO, ZERO)
w6 = FFV1P0_3(w3, w2, GC_11, ZERO, ZERO)
FFV1_0(w5, w1, w6, GC_11) -> -1/2@1 +1/6@3
w5 = FFV1_1(w2, w4, GC_11, MT, WT)
w7 = FFV1P0_3(w0, w1, GC_11, ZERO, ZERO)
FFV1_0(w3, w5, w7, GC_11) -> +1/6@0 -1/2@1
w5 = FFV1_2(w3, w4, GC_11, MT, WT)
FFV1_0(w5, w2, w7, GC_11) -> +1/6@0 -1/2@2
w5 = FFV1_1(w1, w4, GC_11, ZERO, ZERO)
FFV1_0(w0, w5, w6, GC_11) -> -1/2@2 +1/6@3
VVV1_0(w4, w7, w6, GC_10) -> +i/2@1 -i/2@2
"""

# MadJax's 14-dimensional example: g g > t t~ with both tops decayed through W
# bosons to quarks, as MadGraph builds a decay chain. Only the three g g > t t~
# diagrams with the decay attached (on-shell topology); the tops and Ws propagate
# with fixed-width Breit–Wigner denominators (MT, WT; MW, WW) and the full
# numerators, so spin correlations are exact. The b quark is massive (MB), as in
# the MG5 sm model. Colour: the g g > t t~ flows times a singlet δ for each
# W → q q̄', so the matrix is 3·3 = 9 times that of g g > t t~.
GG_TTX_DECAYED = """
process: g g > t t~, t > b u d~, t~ > b~ d u~
externals: v(ZERO,-1) v(ZERO,-1) o(MB,+1) o(ZERO,+1) i(ZERO,-1) i(MB,-1) o(ZERO,+1) i(ZERO,-1)
average: 256
# Massless u, d at V−A vertices: only left-handed quarks and right-handed
# antiquarks couple (16 of the 256 combinations; the rest are exactly zero).
helicities: 3=-1 4=+1 6=-1 7=+1
colour_denominators: 1 1
colour_matrix: 48 -6 / -6 48
# t > b W+, W+ > u d~ (an outgoing top line, o-type)
w8 = FFV2_3(w4, w3, GC_100, MW, WW)
w9 = FFV2_1(w2, w8, GC_100, MT, WT)
# t~ > b~ W-, W- > d u~ (an outgoing antitop line, i-type)
w10 = FFV2_3(w7, w6, GC_100, MW, WW)
w11 = FFV2_2(w5, w10, GC_100, MT, WT)
# g g > t t~ on the decayed lines: s, t and u channels
w12 = VVV1P0_1(w0, w1, GC_10, ZERO, ZERO)
FFV1_0(w11, w9, w12, GC_11) -> +i@0 -i@1
w13 = FFV1_1(w9, w0, GC_11, MT, WT)
FFV1_0(w11, w13, w1, GC_11) -> -1@0
w13 = FFV1_2(w11, w0, GC_11, MT, WT)
FFV1_0(w13, w9, w1, GC_11) -> -1@1
"""

SM_PROCESSES: tuple[str, ...] = (EPEM_MUPMUM, UUX_DDX, UUX_TTX, BBX_TTX, GG_TTX, GG_TTXG, UUX_TTXG, GG_TTX_DECAYED)


def generated_processes() -> tuple[Process, ...]:
    """Processes built by the colour-ordered recursion of `_qcd` (too many diagrams to list)."""
    gluon_in, gluon_out = External("v", "ZERO", -1), External("v", "ZERO", +1)
    top, antitop = External("o", "MT", +1), External("i", "MT", -1)
    gg_ttxgg = quark_line_process(
        "g g > t t~ g g",
        (gluon_in, gluon_in, top, antitop, gluon_out, gluon_out),
        quark=2,
        antiquark=3,
        gluons=(0, 1, 4, 5),
        average=512,  # 4 helicities × 64 colours × 2! identical final gluons
    )
    return (gg_ttxgg,)
