"""Processes as data: a small description language compiled to a JAX |M|² kernel.

A process is written in the language below, a transcription of the diagram
sequence that MadGraph generates (its ``CPPProcess``/``diagrams`` code), not a
hand-written amplitude::

    process: g g > t t~
    externals: v(ZERO,-1) v(ZERO,-1) o(MT,+1) i(MT,-1)
    average: 256
    colour_denominators: 3 3
    colour_matrix: 16 -2 / -2 16
    w4 = VVV1P0_1(w0, w1, GC_10, ZERO, ZERO)
    FFV1_0(w3, w2, w4, GC_11) -> +i@0 -i@1

- ``externals``: one HELAS call per external particle, in MadGraph's particle
  order: ``i``/``o``/``v``/``s`` for ``ixxxxx``/``oxxxxx``/``vxxxxx``/``sxxxxx``,
  with the mass name and ``nsf``/``nsv``. Wavefunction ``wK`` of particle K.
- ``average``: MadGraph's helicity × colour average times identical-particle factor.
- ``helicities`` (optional): ``k=h`` pairs fixing the helicity of particle k
  where all other helicities give exactly zero (massless quarks at W vertices).
- ``colour_denominators`` and ``colour_matrix`` (rows separated by ``/``): the
  colour-flow matrix; |M|² = Σ_ij conj(J_i) C_ij J_j / d_i.
- ``wK = ROUTINE(args)``: an off-shell wavefunction; ``ROUTINE(args) -> c@k …``
  an amplitude added to colour flows ``k`` with coefficients ``c`` (``+1``,
  ``-i``, ``+1/6``, …). Arguments are wavefunctions ``wN``, couplings ``GC_N``
  (see `SMParameters.couplings`) and mass/width names (`SMParameters.masses`).

`compile_process` turns a `Process` into `kernel(momenta, params)` for one
event. Helicities are an integer array `(n_combinations, n_external)` and the
kernel is `vmap`-ed over them; external wavefunctions are computed once per
event for both helicity states and gathered.
"""

import dataclasses
import itertools
import re
from collections.abc import Callable
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from . import _helas
from ._params import SMParameters

_EXTERNAL_KINDS = {"i": "ixxxxx", "o": "oxxxxx", "v": "vxxxxx", "s": "sxxxxx"}

# Routines usable in a description: name -> (callable, number of wavefunction args).
_ROUTINES: dict[str, tuple[Callable, int]] = {
    "FFV1_0": (_helas.FFV1_0, 3),
    "FFV2_0": (_helas.FFV2_0, 3),
    "FFV4_0": (_helas.FFV4_0, 3),
    "FFV2_4_0": (_helas.FFV2_4_0, 3),
    "FFV1P0_3": (_helas.FFV1P0_3, 2),
    "FFV2_3": (_helas.FFV2_3, 2),
    "FFV2_4_3": (_helas.FFV2_4_3, 2),
    "FFV1_1": (_helas.FFV1_1, 2),
    "FFV1_2": (_helas.FFV1_2, 2),
    "VVV1_0": (_helas.VVV1_0, 3),
    "VVV1P0_1": (_helas.VVV1P0_1, 2),
    "VVVV1_0": (_helas.VVVV1_0, 4),
    "VVVV3_0": (_helas.VVVV3_0, 4),
    "VVVV4_0": (_helas.VVVV4_0, 4),
    "VVVV1P0_1": (_helas.VVVV1P0_1, 3),
    "VVVV3P0_1": (_helas.VVVV3P0_1, 3),
    "VVVV4P0_1": (_helas.VVVV4P0_1, 3),
    "FFV2_1": (_helas.FFV2_1, 2),
    "FFV2_2": (_helas.FFV2_2, 2),
    "VVVV_ordered_P0_1": (_helas.VVVV_ordered_P0_1, 3),
    "ADD": (_helas.ADD, 2),
}


@dataclasses.dataclass(frozen=True)
class External:
    kind: str  # "i", "o", "v" or "s"
    mass: str  # a key of SMParameters.masses()
    ns: int  # nsf / nsv / nss: +1 or -1


@dataclasses.dataclass(frozen=True)
class Call:
    routine: str
    wavefunctions: tuple[int, ...]
    couplings: tuple[str, ...]
    masses: tuple[str, ...]  # (mass, width) for an off-shell wavefunction, () for an amplitude
    out: int | None  # wavefunction slot written, or None for an amplitude


@dataclasses.dataclass(frozen=True)
class Process:
    """A tree-level process: external particles, diagrams and colour algebra.

    Hashable and immutable, so that it can be a static argument of `jax.jit`.
    Build it with `parse_process`.
    """

    name: str
    externals: tuple[External, ...]
    calls: tuple[Call, ...]
    jamp_coefficients: tuple[tuple[complex, ...], ...]  # (n_colour, n_amplitudes)
    colour_matrix: tuple[tuple[float, ...], ...]
    colour_denominators: tuple[float, ...]
    average: int
    # Optional: the calls describe one colour flow; it is evaluated (vmap) once per
    # row of `permutations`, the external wavefunction read into slot k being
    # number `row[k]`, and the amplitudes of all rows are concatenated (see `_qcd`).
    permutations: tuple[tuple[int, ...], ...] = ()
    # Optional: (particle, helicity) pairs that every non-zero amplitude has, e.g. a
    # massless quark at a W vertex is left-handed. The other combinations are
    # identically zero and skipped (MadGraph filters them numerically instead).
    fixed_helicities: tuple[tuple[int, int], ...] = ()

    @property
    def n_external(self) -> int:
        return len(self.externals)

    def helicities(self) -> np.ndarray:
        """All helicity combinations, `(n_combinations, n_external)` ints, MadGraph's order."""
        states = []
        for ext in self.externals:
            if ext.kind == "s":
                states.append((0,))
            elif ext.kind == "v" and ext.mass != "ZERO":
                states.append((-1, 0, 1))
            else:
                states.append((-1, 1))
        for k, h in self.fixed_helicities:
            if h not in states[k]:
                raise ValueError(f"particle {k} of {self.name!r} has no helicity {h}")
            states[k] = (h,)
        return np.array(list(itertools.product(*states)), dtype=np.int32)


_CALL_RE = re.compile(r"^(?:w(\d+)\s*=\s*)?([A-Za-z0-9_]+)\((.*)\)\s*(?:->\s*(.*))?$")
_EXT_RE = re.compile(r"^([iovs])\((\w+),\s*([+-]?1)\)$")
_COEF_RE = re.compile(r"^([+-])(i?)(\d*)(?:/(\d+))?@(\d+)$")


def _parse_coefficient(token: str) -> tuple[int, complex]:
    m = _COEF_RE.match(token)
    if m is None:
        raise ValueError(f"bad colour-flow coefficient {token!r} (want e.g. +1@0, -i@2, +1/6@1)")
    sign, imag, num, den, col = m.groups()
    if not imag and not num:
        raise ValueError(f"bad colour-flow coefficient {token!r}")
    value = Fraction(int(num) if num else 1, int(den) if den else 1)
    value = float(value) * (-1.0 if sign == "-" else 1.0)
    return int(col), (1j * value if imag else complex(value))


def parse_process(text: str) -> Process:
    """Parse a process description (see the module docstring) into a `Process`."""
    header: dict[str, str] = {}
    calls: list[Call] = []
    amp_coefs: list[list[tuple[int, complex]]] = []
    for raw in text.strip().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip() in {"process", "externals", "average", "colour_denominators", "colour_matrix", "helicities"}:
            header[key.strip()] = value.strip()
            continue
        m = _CALL_RE.match(line)
        if m is None:
            raise ValueError(f"cannot parse process line {line!r}")
        out, routine, args, coefs = m.groups()
        if routine not in _ROUTINES:
            raise ValueError(f"unknown HELAS routine {routine!r} in {line!r}; known: {sorted(_ROUTINES)}")
        tokens = [a.strip() for a in args.split(",")]
        wfs = tuple(int(t[1:]) for t in tokens if re.fullmatch(r"w\d+", t))
        coups = tuple(t for t in tokens if t.startswith("GC_"))
        masses = tuple(t for t in tokens if not re.fullmatch(r"w\d+", t) and not t.startswith("GC_"))
        if len(wfs) != _ROUTINES[routine][1]:
            raise ValueError(f"{routine} takes {_ROUTINES[routine][1]} wavefunctions: {line!r}")
        if out is None:
            if masses or not coefs:
                raise ValueError(f"an amplitude line needs colour flows and no masses: {line!r}")
            amp_coefs.append([_parse_coefficient(t) for t in coefs.split()])
            calls.append(Call(routine, wfs, coups, (), None))
        else:
            if len(masses) != 2 or coefs:
                raise ValueError(f"an off-shell wavefunction needs a mass and a width: {line!r}")
            calls.append(Call(routine, wfs, coups, masses, int(out)))

    missing = {"process", "externals", "average", "colour_denominators", "colour_matrix"} - set(header)
    if missing:
        raise ValueError(f"process description lacks {sorted(missing)}")
    externals = []
    for token in header["externals"].split():
        m = _EXT_RE.match(token)
        if m is None:
            raise ValueError(f"bad external {token!r} (want e.g. o(MT,+1))")
        externals.append(External(m.group(1), m.group(2), int(m.group(3))))
    denominators = tuple(float(x) for x in header["colour_denominators"].split())
    matrix = tuple(tuple(float(x) for x in row.split()) for row in header["colour_matrix"].split("/"))
    n_colour = len(denominators)
    if len(matrix) != n_colour or any(len(row) != n_colour for row in matrix):
        raise ValueError(f"colour matrix of {header['process']!r} is not {n_colour}x{n_colour}")
    coefficients = np.zeros((n_colour, len(amp_coefs)), dtype=complex)
    for k, flows in enumerate(amp_coefs):
        for col, c in flows:
            if not 0 <= col < n_colour:
                raise ValueError(f"colour flow {col} out of range in {header['process']!r}")
            coefficients[col, k] += c
    fixed = []
    for token in header.get("helicities", "").split():
        m = re.fullmatch(r"(\d+)=([+-]?1|0)", token)
        if m is None:
            raise ValueError(f"bad helicity restriction {token!r} (want e.g. 3=-1)")
        fixed.append((int(m.group(1)), int(m.group(2))))
    return Process(
        fixed_helicities=tuple(fixed),
        name=" ".join(header["process"].split()),
        externals=tuple(externals),
        calls=tuple(calls),
        jamp_coefficients=tuple(tuple(complex(c) for c in row) for row in coefficients),
        colour_matrix=matrix,
        colour_denominators=denominators,
        average=int(header["average"]),
    )


def _mass_value(masses: dict[str, Array], name: str):
    # "ZERO" stays a Python float, so that HELAS takes its massless branch at trace time.
    return 0.0 if name == "ZERO" else masses[name]


def _external_wavefunctions(process: Process, momenta: Array, masses: dict[str, Array]) -> list[Array]:
    """Per external particle, the wavefunctions of its helicity states stacked on axis 0."""
    out = []
    for k, ext in enumerate(process.externals):
        p = momenta[k]
        mass = _mass_value(masses, ext.mass)
        if ext.kind == "s":
            out.append(_helas.sxxxxx(p, ext.ns)[None])
            continue
        fn = getattr(_helas, _EXTERNAL_KINDS[ext.kind])
        hels = (-1, 0, 1) if ext.kind == "v" and ext.mass != "ZERO" else (-1, 1)
        # One trace per particle, vmapped over its helicities (compile time).
        out.append(jax.vmap(lambda h, fn=fn, p=p, mass=mass, ns=ext.ns: fn(p, mass, h, ns))(jnp.array(hels)))
    return out


def _helicity_index(process: Process) -> np.ndarray:
    """Helicity combinations as indices into the stacked states of `_external_wavefunctions`."""
    hel = process.helicities()
    idx = np.empty_like(hel)
    for k, ext in enumerate(process.externals):
        if ext.kind == "s":
            idx[:, k] = 0
        elif ext.kind == "v" and ext.mass != "ZERO":
            idx[:, k] = hel[:, k] + 1
        else:
            idx[:, k] = (hel[:, k] + 1) // 2
    return idx


def _amplitudes(
    process: Process, externals: list[Array], couplings: dict[str, Array], masses: dict[str, Array]
) -> Array:
    """The amplitude of every amplitude call `(n_amplitudes,)` for one helicity combination."""
    w: dict[int, Array] = dict(enumerate(externals))
    amps = []
    for call in process.calls:
        fn = _ROUTINES[call.routine][0]
        args = [w[i] for i in call.wavefunctions] + [couplings[c] for c in call.couplings]
        if call.out is None:
            amps.append(fn(*args))
        else:
            w[call.out] = fn(*args, *(_mass_value(masses, m) for m in call.masses))
    return jnp.stack(amps)


def amplitudes_from_wavefunctions(
    process: Process, externals: list[Array], couplings: dict[str, Array], masses: dict[str, Array]
) -> Array:
    """All amplitude lines `(n_amplitudes,)` for given external wavefunctions.

    For tests that feed non-standard wavefunctions (e.g. a gluon polarisation
    replaced by its momentum, for gauge invariance). `couplings` must already be
    complex.
    """
    if not process.permutations:
        return _amplitudes(process, externals, couplings, masses)
    # One template, vmapped over relabellings of the externals: a few calls
    # traced once instead of one per colour flow (compile time).
    stacked = jnp.stack(externals)
    perms = jnp.asarray(np.array(process.permutations))

    def one_flow(perm):
        permuted = stacked[perm]
        return _amplitudes(process, [permuted[k] for k in range(process.n_external)], couplings, masses)

    return jax.vmap(one_flow)(perms).reshape(-1)


def helicity_amplitudes(process: Process, momenta: Float[ArrayLike, "n 4"], params: SMParameters) -> Array:
    """Amplitudes `(n_helicities, n_amplitudes)` of one event, before colour algebra.

    Rows follow `process.helicities()`, columns the amplitude lines of the
    description (for a `permutations` process: flow-major, each flow's lines). For diagnostics, e.g. MadGraph's single-diagram-enhancement weights.
    """
    momenta = jnp.asarray(momenta)
    couplings = {k: v.astype(jnp.result_type(momenta.dtype, jnp.complex64)) for k, v in params.couplings().items()}
    masses = params.masses()
    states = _external_wavefunctions(process, momenta, masses)

    def one_helicity(idx):
        externals = [states[k][idx[k]] for k in range(process.n_external)]
        return amplitudes_from_wavefunctions(process, externals, couplings, masses)

    return jax.vmap(one_helicity)(jnp.asarray(_helicity_index(process)))


def matrix_element_kernel(
    process: Process, momenta: Float[ArrayLike, "n 4"], params: SMParameters
) -> Float[Array, ""]:
    """|M|² of one event, summed over helicities and colours and averaged as MadGraph does.

    **Arguments:**
    - `process`: a parsed `Process` (static).
    - `momenta`: `(n_external, 4)` four-momenta `(E, px, py, pz)` in GeV, in
      MadGraph's particle order.
    - `params`: `SMParameters`, already in the dtype of `momenta`.

    **Returns:** a 0-d array in GeV^(8−2n). Differentiable in `momenta` and `params`.
    """
    amps = helicity_amplitudes(process, momenta, params)  # (n_helicities, n_amplitudes)
    coefficients = jnp.asarray(np.array(process.jamp_coefficients), dtype=amps.dtype)
    jamps = amps @ coefficients.T  # (n_helicities, n_colour)
    momenta = jnp.asarray(momenta)
    colour = np.array(process.colour_matrix) / np.array(process.colour_denominators)[:, None]
    colour = jnp.asarray(colour, dtype=momenta.dtype)
    # Re(J† C J): C is real, so this is Re(J)·C·Re(J) + Im(J)·C·Im(J).
    me = jnp.einsum("hi,ij,hj->", jamps.real, colour, jamps.real) + jnp.einsum(
        "hi,ij,hj->", jamps.imag, colour, jamps.imag
    )
    return me / process.average
