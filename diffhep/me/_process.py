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

`matrix_element_kernel(process, momenta, params)` evaluates a `Process` for one
event or for events along trailing axes (the minor axis, which a CPU vectorises).
External wavefunctions are computed once per event for every helicity state (one
vmapped trace per kind of particle), each on its own helicity axis; HELAS is
elementwise, so every call broadcasts over the helicity axes of the externals it
depends on and no others (MadGraph's helicity recycling, here by broadcasting). The
calls are renamed to single assignments and grouped (`_schedule`): calls of the same
routine at the same depth of the diagram share one vmapped trace (compile time), each
member broadcast to its own helicity axes only (`_vmap_members`). The arithmetic of
every call is that of the HELAS routine.
"""

import dataclasses
import functools
import itertools
import operator
import re
from collections.abc import Callable
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from . import _helas
from ._params import SMParameters
from .._precision import FULL

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


def _helicity_states(ext: External) -> tuple[int, ...]:
    if ext.kind == "s":
        return (0,)
    return (-1, 0, 1) if ext.kind == "v" and ext.mass != "ZERO" else (-1, 1)


def _external_wavefunctions(process: Process, momenta: Array, masses: dict[str, Array]) -> list[Array]:
    """Per external particle, the wavefunctions of its helicity states stacked on axis 0.

    Particles of the same kind and number of helicity states share one trace of
    their HELAS routine, vmapped over particles and helicities (compile time: the
    decay chain has 8 externals but 3 kinds). In a group that mixes massive and
    massless particles the mass is an array and HELAS selects the branch with
    `where`, which gives the massless particles the values of the static branch.
    """
    groups: dict[tuple[str, int], list[int]] = {}
    for k, ext in enumerate(process.externals):
        # Outgoing fermions (`oxxxxx`) are the Dirac adjoints of `ixxxxx` (below): one group.
        kind = "i" if ext.kind == "o" else ext.kind
        groups.setdefault((kind, len(_helicity_states(ext))), []).append(k)
    out: list[Array | None] = [None] * process.n_external
    for (kind, _), members in groups.items():
        exts = [process.externals[k] for k in members]
        p = momenta[np.array(members)]
        ns = jnp.asarray([e.ns for e in exts], dtype=jnp.int32)
        if kind == "s":
            states = jax.vmap(lambda p, ns: _helas.sxxxxx(p, ns)[None])(p, ns)
        else:
            fn = getattr(_helas, _EXTERNAL_KINDS[kind])
            hels = jnp.array(_helicity_states(exts[0]))
            if all(e.mass == "ZERO" for e in exts):
                mass = 0.0  # a Python float: HELAS's massless branch at trace time
                mass_axis = None
            else:
                mass = jnp.stack([jnp.asarray(_mass_value(masses, e.mass), dtype=momenta.dtype) for e in exts])
                mass_axis = 0

            def one(p, mass, ns, fn=fn, hels=hels):
                return jax.vmap(lambda h: fn(p, mass, h, ns))(hels)

            states = jax.vmap(one, in_axes=(0, mass_axis, 0))(p, mass, ns)
        for k, state in zip(members, jnp.unstack(states)):
            if process.externals[k].kind == "o":
                # HELAS oxxxxx(p, m, h, nsf) = ū = u†γ⁰ of ixxxxx(p, m, h, nsf), flow negated:
                # conjugate, swap the chiral halves (exact; tested against oxxxxx).
                conj = jnp.conj(state)
                state = jnp.concatenate([-state[:, :2], conj[:, 4:6], conj[:, 2:4]], axis=1)
            out[k] = state
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


def _helicity_axes(process: Process, states: list[Array]) -> tuple[list[Array], tuple[int, ...]]:
    """Per external particle its wavefunctions `(6, 1, …, d_k, …, 1, *batch)`: one axis
    per particle with several helicity states (`d_k` of them), of size 1 for the
    others' (a particle with one state, e.g. a fixed helicity, has none); and the
    dims of these axes.

    HELAS is elementwise, so a current computed from these broadcasts over the
    helicities of its own externals only: every sub-current is computed once per
    helicity combination *of the particles it depends on* (MadGraph's "helicity
    recycling"), not once per combination of all of them. `process.helicities()` is
    the Cartesian product of the particles' states in order, i.e. the row-major
    flattening of these axes.
    """
    choices = []
    for k, ext in enumerate(process.externals):
        allowed = _helicity_states(ext)
        fixed = dict(process.fixed_helicities).get(k)
        choices.append([allowed.index(fixed)] if fixed is not None else list(range(len(allowed))))
    # Only particles with more than one state get an axis (fewer, smaller ops to compile).
    dims = tuple(len(c) for c in choices if len(c) > 1)
    out, axis = [], 0
    for state, chosen in zip(states, choices):
        if len(chosen) != state.shape[0]:  # a fixed helicity: a static slice
            state = state[chosen[0] : chosen[0] + 1]
        state = jnp.moveaxis(state, 0, 1)  # (6, d_k, *batch)
        if len(chosen) > 1:
            shape = state.shape[:1] + (1,) * axis + (len(chosen),) + (1,) * (len(dims) - axis - 1) + state.shape[2:]
            axis += 1
        else:
            shape = state.shape[:1] + (1,) * len(dims) + state.shape[2:]
        out.append(state.reshape(shape))
    return out, dims


@dataclasses.dataclass(frozen=True)
class _Group:
    """Calls of one routine, couplings and masses whose inputs are all known: one vmapped trace."""

    call: Call  # the first member (routine, couplings, masses)
    inputs: tuple[tuple[int, ...], ...]  # per member, the value ids of its wavefunction arguments
    members: tuple[Call, ...]  # per member, its call (a fermion-current group mixes routines)
    outputs: tuple[int, ...]  # per member, the value id it defines (an amplitude index for amplitudes)
    amplitude: bool


@functools.cache
def _schedule(process: Process) -> tuple[tuple[_Group, ...], int]:
    """The calls of `process` as groups of identical routines, in an executable order.

    Slots of the description are renamed to single-assignment value ids (externals
    `0…n−1`, then one id per wavefunction call). A wavefunction call is placed at
    1 + the deepest level of its inputs, every amplitude after all wavefunctions;
    calls of the same routine, couplings and masses at the same level are
    evaluated together, `vmap`-ped over the members (compile time: one trace per
    group instead of one per call; the arithmetic per call is unchanged). The
    off-shell fermions `FFV1_1`, `FFV1_2`, `FFV2_1` and `FFV2_2` of one level form
    one group of `_helas.fermion_current`, with per-member couplings and masses.

    **Returns:** `(groups, n_amplitudes)`.
    """
    current = {k: k for k in range(process.n_external)}  # slot -> value id
    level = {k: 0 for k in range(process.n_external)}
    members: dict[tuple, list[tuple[tuple[int, ...], int, Call]]] = {}
    n_values, n_amps = process.n_external, 0
    for call in process.calls:
        ids = tuple(current[i] for i in call.wavefunctions)
        if call.out is None:
            key = (float("inf"), call.routine, call.couplings, call.masses)
            members.setdefault(key, []).append((ids, n_amps, call))
            n_amps += 1
        else:
            depth = 1 + max(level[i] for i in ids)
            if call.routine in _FERMION_CURRENTS:
                key = (depth, "fermion_current", (), ())
            else:
                key = (depth, call.routine, call.couplings, call.masses)
            members.setdefault(key, []).append((ids, n_values, call))
            level[n_values] = depth
            current[call.out] = n_values
            n_values += 1
    groups = []
    for key in sorted(members, key=lambda k: k[0]):  # stable: first use within a level
        routine, couplings, masses = key[1:]
        rows = members[key]
        groups.append(
            _Group(
                Call(routine, (), couplings, masses, None),
                tuple(ids for ids, _, _ in rows),
                tuple(call for _, _, call in rows),
                tuple(out for _, out, _ in rows),
                amplitude=key[0] == float("inf"),
            )
        )
    return tuple(groups), n_amps


# routine -> (charge-conjugated?, which components of γ·V F are kept); see `_helas.fermion_current`.
_FERMION_CURRENTS = {
    "FFV1_1": (False, (1.0, 1.0, 1.0, 1.0)),
    "FFV1_2": (True, (1.0, 1.0, 1.0, 1.0)),
    "FFV2_1": (False, (1.0, 1.0, 0.0, 0.0)),
    "FFV2_2": (True, (0.0, 0.0, 1.0, 1.0)),
}


def _fermion_currents(
    group: _Group, values: dict[int, Array], couplings: dict[str, Array], masses: dict[str, Array]
) -> list[Array]:
    """The off-shell fermions of a `fermion_current` group, one vmapped trace."""
    conj = np.array([_FERMION_CURRENTS[c.routine][0] for c in group.members])
    mask = np.array([_FERMION_CURRENTS[c.routine][1] for c in group.members])
    dtype = values[group.inputs[0][0]].real.dtype
    coup = jnp.stack([couplings[c.couplings[0]] for c in group.members])
    mass, width = (
        jnp.stack([jnp.asarray(_mass_value(masses, c.masses[i]), dtype=dtype) for c in group.members]) for i in (0, 1)
    )
    return _vmap_members(
        _helas.fermion_current,
        [[values[i] for i in ids] for ids in group.inputs],
        (coup, mass, width, jnp.asarray(conj), jnp.asarray(mask, dtype=dtype)),
    )


def _squeeze(w: Array, shape: tuple[int, ...], squeezed: tuple[int, ...]) -> Array:
    """`w` `(c, *batch)` broadcast to `(c, *shape)` and reshaped to `(c, *squeezed)`."""
    return jnp.broadcast_to(w, w.shape[:1] + shape).reshape(w.shape[:1] + squeezed)


def _vmap_members(fn: Callable, inputs: list[list[Array]], per_member: tuple = (), shared: tuple = ()) -> list[Array]:
    """`fn(*wavefunctions, *per_member[m], *shared)` for every member `m` of a group,
    `vmap`-ped over members whose inputs broadcast to the same non-unit axes.

    A member's wavefunctions broadcast over the helicity axes of its own externals
    (`_helicity_axes`). Stacking a whole group would broadcast every member to the
    union of all members' axes (a current of two gluons of `g g > t t~ g g` to 32
    helicity combinations instead of 4) and pass that size on to every later call. So
    each member's inputs are broadcast to its own shape and squeezed of the unit axes
    (a reshape); members of equal squeezed shape share one vmapped trace, and each
    result is reshaped back to its member's axes.

    `inputs[m]` are member `m`'s wavefunctions `(6, *batch_m)`; `per_member` holds
    arrays with the members on axis 0.
    """
    shapes = [jnp.broadcast_shapes(*(w.shape[1:] for w in ws)) for ws in inputs]
    parts: dict[tuple[int, ...], list[int]] = {}
    for m, shape in enumerate(shapes):
        parts.setdefault(tuple(d for d in shape if d != 1), []).append(m)
    out: list[Array | None] = [None] * len(inputs)
    for squeezed, members in parts.items():
        take = np.array(members)
        extra = [x[take] if len(members) < len(inputs) else x for x in per_member]
        same = all(shapes[m] == shapes[members[0]] for m in members)
        args, axes = [], []
        for a in range(len(inputs[0])):
            ws = [inputs[m][a] for m in members]
            if same and all(w is ws[0] for w in ws):
                # Same axes (e.g. amplitudes, over all helicities): an input that all
                # members share is passed once and broadcast inside `fn`.
                args.append(ws[0])
                axes.append(None)
            elif same:  # stacked at the union of this input's own shapes, no squeeze
                args.append(_helas.stack_broadcast(ws))
                axes.append(0)
            else:
                args.append(jnp.stack([_squeeze(w, shapes[m], squeezed) for w, m in zip(ws, members)]))
                axes.append(0)
        results = jax.vmap(lambda *w: fn(*w, *shared), in_axes=(*axes, *(0,) * len(extra)))(*args, *extra)
        for m, result in zip(members, jnp.unstack(results)):
            out[m] = result if same else result.reshape(result.shape[: result.ndim - len(squeezed)] + shapes[m])
    return out


def amplitudes_from_wavefunctions(
    process: Process, externals: list[Array], couplings: dict[str, Array], masses: dict[str, Array]
) -> Array:
    """All amplitude lines `(n_amplitudes, *batch)` from the external wavefunctions
    (`(6, *batch_k)` each, batch shapes that broadcast to `batch`: the helicity axes of
    `_helicity_axes` and the events; `batch` may be empty, one helicity combination of
    one event).

    Tests also feed it non-standard wavefunctions (e.g. a gluon polarisation replaced
    by its momentum, for gauge invariance). `couplings` must already be complex.
    """
    groups, n_amps = _schedule(process)
    values: dict[int, Array] = dict(enumerate(externals))
    amps: list[Array | None] = [None] * n_amps
    for group in groups:
        call = group.call
        if call.routine == "fermion_current":
            results = _fermion_currents(group, values, couplings, masses)
            for out, result in zip(group.outputs, results):
                values[out] = result
            continue
        fn = _ROUTINES[call.routine][0]
        constants = [couplings[c] for c in call.couplings] + [_mass_value(masses, m) for m in call.masses]
        # ADDs (sums of currents) are not vmapped: stacking their inputs and unstacking
        # their sums moved 3× the data of the additions, which XLA instead fuses into
        # the next group's input stack (g g > t t~ g g: 1.22× faster, 4 s less to compile).
        if len(group.inputs) == 1 or call.routine == "ADD":
            results = [fn(*(values[i] for i in ids), *constants) for ids in group.inputs]
        else:
            results = _vmap_members(fn, [[values[i] for i in ids] for ids in group.inputs], shared=tuple(constants))
        for out, result in zip(group.outputs, results):
            if group.amplitude:
                amps[out] = result
            else:
                values[out] = result
    return _helas.stack_broadcast(amps)


def helicity_amplitudes(process: Process, momenta: Float[ArrayLike, "n 4 *batch"], params: SMParameters) -> Array:
    """Amplitudes `(n_helicities, n_amplitudes, *batch)` before colour algebra.

    `momenta` is `(n_external, 4)` for one event, or `(n_external, 4, *batch)` for
    events along trailing axes. Rows follow `process.helicities()`, columns the
    amplitude lines of the description. For diagnostics, e.g. MadGraph's single-diagram-enhancement
    weights.
    """
    momenta = jnp.asarray(momenta)
    couplings = {k: v.astype(jnp.result_type(momenta.dtype, jnp.complex64)) for k, v in params.couplings().items()}
    masses = params.masses()
    states = _external_wavefunctions(process, momenta, masses)

    externals, dims = _helicity_axes(process, states)
    amps = amplitudes_from_wavefunctions(process, externals, couplings, masses)  # (A, *dims, *batch)
    amps = jnp.broadcast_to(amps, amps.shape[:1] + dims + amps.shape[1 + len(dims) :])
    amps = amps.reshape(amps.shape[:1] + (-1,) + amps.shape[1 + len(dims) :])
    return jnp.moveaxis(amps, 0, 1)


def matrix_element_kernel(
    process: Process, momenta: Float[ArrayLike, "n 4 *batch"], params: SMParameters
) -> Float[Array, "*batch"]:
    """|M|², summed over helicities and colours and averaged as MadGraph does.

    **Arguments:**
    - `process`: a parsed `Process` (static).
    - `momenta`: `(n_external, 4)` four-momenta `(E, px, py, pz)` in GeV, in
      MadGraph's particle order, or `(n_external, 4, *batch)`: events along
      trailing axes. Every HELAS routine is elementwise in its components, so the
      event axis stays the minor (contiguous) one and the CPU's vector units run
      over events, as CUDACPP's SIMD does (`vmap` over events puts the events first
      and the 6 wavefunction components last: 1.6–3× slower on a CPU).
    - `params`: `SMParameters`, already in the dtype of `momenta`.

    **Returns:** `(*batch)` in GeV^(8−2n). Differentiable in `momenta` and `params`.
    """
    amps = helicity_amplitudes(process, momenta, params)  # (n_helicities, n_amplitudes, *batch)
    jamps = _colour_flows(np.array(process.jamp_coefficients), amps)  # n_colour × (n_helicities, *batch)
    colour = np.array(process.colour_matrix) / np.array(process.colour_denominators)[:, None]
    return _colour_sum(colour, jamps) / process.average


def _colour_flows(coefficients: np.ndarray, amps: Array) -> list[Array]:
    """The colour-flow amplitudes `J_c = Σ_a coefficients[c, a] · amps[:, a]`, each
    `(H, *batch)` complex, from `amps` `(H, A, *batch)`.

    Written out as sums over the non-zero coefficients, which are few and mostly
    ±1 or ±i (`g g > t t~ g g`: 96 of 24 × 96, each amplitude line in one flow); a
    dense complex product did 24× the work and was 12 % of the kernel's time.
    """
    columns = jnp.unstack(amps, axis=1)
    flows = []
    for row in coefficients:
        terms = []
        for a in np.flatnonzero(row):
            c = complex(row[a])
            terms.append(columns[a] if c == 1 else -columns[a] if c == -1 else c * columns[a])
        flows.append(functools.reduce(operator.add, terms) if terms else jnp.zeros_like(columns[0]))
    return flows


def _colour_sum(colour: np.ndarray, jamps: list[Array]) -> Array:
    """`Σ_h Re(J_h† C J_h)` `(*batch)` from the colour-flow amplitudes `(H, *batch)` and
    the real colour matrix `C` (rows already divided by their denominators).

    A quadratic form only sees `(C + Cᵀ)/2`; see `_quadratic_form`.
    """
    sym = (colour + colour.T) / 2
    return _quadratic_form(tuple(map(tuple, sym.tolist())), jnp.stack(jamps, axis=1))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _quadratic_form(sym: tuple[tuple[float, ...], ...], jamps: Array) -> Array:
    """`Σ_h Σ_ij sym_ij Re(conj(J_hi) J_hj)` for `jamps` `(H, C, *batch)` and a symmetric `sym`.

    The value is the `C(C+1)/2` products of the symmetric form, written out, which
    XLA fuses with the flows and the helicity sum. The derivative (`custom_jvp`) is
    the contraction `2 Re(J† C dJ)`, whose transpose is one more contraction. Measured
    on one core against the contraction for both:
    - value (`benchmarks/profile_me.py`): `g g > t t~` 8.0e5 -> 9.7e5/s, the decay
      chain 5.4e5 -> 6.4e5/s (the contraction went through two transposes and a
      batched matrix product per step);
    - value + gradient (`bench_me.py --one`, against the kernel before this and before
      the real-reciprocal propagator of `_helas._propagator`): `g g > t t~` 1.62e5 ->
      1.86e5/s, decay chain 1.14e5 -> 1.26e5/s, `g g > t t~ g g` 410 -> 457/s. With the
      products differentiated by JAX instead, `g g > t t~` fell to 1.25e5/s: XLA
      computed the amplitudes twice to keep the real and imaginary parts of the flows
      for the backward pass.
    """
    columns = jnp.unstack(jamps, axis=1)
    terms = []
    for i, j in itertools.combinations_with_replacement(range(len(sym)), 2):
        c = sym[i][j] * (1.0 if i == j else 2.0)  # a Python float keeps float32 float32
        if c != 0:
            terms.append(c * jnp.real(jnp.conj(columns[i]) * columns[j]))
    return jnp.sum(functools.reduce(operator.add, terms), axis=0)


@_quadratic_form.defjvp
def _quadratic_form_jvp(sym, primals, tangents):
    (jamps,), (tangent,) = primals, tangents
    c = jnp.asarray(np.array(sym), dtype=jamps.real.dtype)
    # d Re(J† C J) = 2 Re(J† C dJ) for a real symmetric C.
    out = 2.0 * (
        jnp.einsum("hi...,ij,hj...->...", jamps.real, c, tangent.real, precision=FULL)
        + jnp.einsum("hi...,ij,hj...->...", jamps.imag, c, tangent.imag, precision=FULL)
    )
    return _quadratic_form(sym, jamps), out
