"""Public entry points: `matrix_element` and `processes`."""

import functools
import numbers

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._devices import n_shards, over_events, work_sizes
from ._params import SMParameters
from ._process import Process, matrix_element_kernel, parse_process
from ._sm_processes import SM_PROCESSES, generated_processes


@functools.cache
def _registry() -> dict[str, Process]:
    out = {}
    for text in SM_PROCESSES:
        proc = parse_process(text)
        out[proc.name] = proc
    for proc in generated_processes():
        out[proc.name] = proc
    return out


def processes() -> tuple[str, ...]:
    """The process strings that `matrix_element` knows, in MadGraph's ``generate`` syntax."""
    return tuple(_registry())


def get_process(process: str) -> Process:
    """The parsed `Process` for a ``generate`` string; `ValueError` listing the known ones."""
    key = " ".join(str(process).split())
    try:
        return _registry()[key]
    except KeyError:
        known = ", ".join(repr(p) for p in processes())
        raise ValueError(f"unknown process {process!r}; known processes: {known}") from None


def chunk_size(process: Process) -> int:
    """Events per sequential step of `matrix_element` for `process` (all at once if
    fewer).

    A step holds at most helicities × events × calls "lanes" of intermediate
    wavefunctions (`g g > t t~ g g`: 64 × 652 per event; fewer in fact, as each current
    runs over the helicities of its own externals only), bounded by the backend's
    `me_lanes` (`_devices.work_sizes`), and at least `me_min_events` events, which run
    along the vector units. A CPU wants a step that stays in cache: 2¹⁴ lanes
    (`g g > t t~`: 170 events per step; `g g > t t~ g g`: the minimum, 16).

    On a GPU (H100, 2026-11-26) the default is fastest for `g g > t t~` (43 690 events
    per step: 1.37e8/s; 174 762: 5.2e7/s; 699 050: 3.1e7/s) and the decay chain, but
    `g g > t t~ g g` (100 events per step: 3.1e5/s) ran 2.35x faster at 1 608 (7.3e5/s),
    and compiled in 100 s instead of 33 s, so that it pays only from about 4e7 events
    per compilation; `matrix_element(..., chunk=...)` chooses it
    (`benchmarks/results/me-sizes-gpu.jsonl`).
    """
    sizes = work_sizes()
    lanes = len(process.helicities()) * len(process.calls)
    return int(min(sizes.me_max_chunk, max(sizes.me_min_events, sizes.me_lanes // lanes)))


def _events_last(process: Process, p: Array, params: SMParameters) -> Array:
    """|M|² of `(k, n, 4)` events, computed with the events on the minor axis."""
    return matrix_element_kernel(process, jnp.moveaxis(p, 0, -1), params)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _batched(process: Process, momenta: Array, params: SMParameters, chunk: int | None = None) -> Array:
    flat = momenta.reshape((-1,) + momenta.shape[-2:])
    n = flat.shape[0]
    chunk = chunk_size(process) if chunk is None else chunk
    kernel = functools.partial(_chunked, process, chunk)
    if n // n_shards(n) >= chunk:
        # Events split over the backend's devices (several CPU devices or GPUs), each
        # running the chunked kernel on its share, when every device gets at least a
        # chunk; one device, an indivisible or a small batch (e.g. per point inside a
        # `vmap`) run plain. The parameters are replicated; shard_map sums their
        # gradient over the devices.
        kernel = over_events(kernel, n, n_sharded=1, n_replicated=1)
    return kernel(flat, params).reshape(momenta.shape[:-2])


def _chunked(process: Process, chunk: int, flat: Array, params: SMParameters) -> Array:
    """|M|² of `(k, n, 4)` events, in sequential chunks of `chunk` events."""
    if flat.shape[0] <= chunk:
        return _events_last(process, flat, params)
    # Chunks of events in sequence; `checkpoint` makes the backward pass
    # recompute a chunk instead of storing every chunk's intermediates.
    # Padded to whole chunks (repeating the last event): one traced copy of the
    # kernel, not a second one for the remainder.
    n = flat.shape[0]
    n_chunks = -(-n // chunk)
    padded = jnp.concatenate([flat, jnp.broadcast_to(flat[-1:], (n_chunks * chunk - n, *flat.shape[1:]))])
    kernel = jax.checkpoint(lambda p: _events_last(process, p, params))
    return jax.lax.map(kernel, padded.reshape(n_chunks, chunk, *flat.shape[1:])).reshape(-1)[:n]


def matrix_element(
    process: str, momenta: ArrayLike, params: SMParameters | None = None, *, chunk: int | None = None
) -> Float[Array, "*batch"]:
    """Tree-level |M|² of a Standard Model process, as MadGraph computes it.

    The HELAS/ALOHA amplitudes are ported from MadGraph5_aMC@NLO and reproduce its
    standalone output event by event (to ~1e-13 relative in float64).

    **Arguments:**
    - `process`: a MadGraph ``generate`` string, e.g. ``"g g > t t~"``; see
      `processes()`.
    - `momenta`: `(..., n, 4)` four-momenta `(E, px, py, pz)` in GeV, in
      MadGraph's particle order (the two incoming partons first). They are used
      as given: HELAS evaluates massive spinors even on off-shell momenta.
    - `params`: `SMParameters`; default the MG5 ``sm`` card
      (`SMParameters.from_param_card()`, α_s = 0.118 fixed).
    - `chunk`: events evaluated together per sequential step (the rest of a batch
      waits). Default: the backend's choice for the process (on a CPU, steps that stay
      in cache: 170 events for `g g > t t~`, 16 for `g g > t t~ g g`; on a GPU 43 690
      and 100). Larger steps keep more intermediates in memory and may compile longer;
      the values do not change.

    **Returns:** `(...)` |M|², summed over final-state and averaged over
    initial-state helicities and colours (and divided by the identical-particle
    factor), in GeV^(8−2n). Differentiable with respect to `momenta` and every
    field of `params`; works under `jit` and `vmap`. float32 momenta give a
    complex64 computation.

    Raises `ValueError` for an unknown process, momenta of the wrong shape or a
    `chunk` that is not a positive integer.
    """
    proc = get_process(process)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, numbers.Integral) or chunk < 1):
        raise ValueError(f"chunk must be a positive integer (events per step) or None, got {chunk!r}")
    momenta = jnp.asarray(momenta)
    n = proc.n_external
    if momenta.ndim < 2 or momenta.shape[-2:] != (n, 4):
        raise ValueError(
            f"momenta for {proc.name!r} must have shape (..., {n}, 4) "
            f"({n} particles × (E, px, py, pz)); got shape {momenta.shape}"
        )
    if not jnp.issubdtype(momenta.dtype, jnp.floating):
        momenta = momenta.astype(jnp.result_type(float))
    if params is None:
        params = SMParameters.from_param_card()
    # One precision throughout: the parameters follow the momenta (float32 -> complex64).
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype=momenta.dtype), params)
    return _batched(proc, momenta, params, None if chunk is None else int(chunk))
