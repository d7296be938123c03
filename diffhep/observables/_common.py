"""Shared input handling for event-shape kernels."""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from .._devices import observable_chunk
from .._events import check_finite, check_momenta


def prepare(momenta: ArrayLike, mask: ArrayLike | None, name: str) -> tuple[Array, Array]:
    """Validate `(..., n, 4)` momenta and `(..., n)` mask and zero the padding.

    Shape problems raise `ValueError`; NaN/inf raise at run time via `eqx.error_if`.
    """
    momenta = jnp.asarray(momenta)
    check_momenta(momenta, mask, name=f"{name}: momenta")
    mask = jnp.ones(momenta.shape[:-1], bool) if mask is None else jnp.asarray(mask, bool)
    momenta = check_finite(momenta, name=f"{name}: momenta")
    return jnp.where(mask[..., None], momenta, 0.0), mask


@functools.partial(jax.jit, static_argnames=("kernel", "name", "chunk", "cache_elements"))
def batched(
    kernel: Callable,
    momenta: ArrayLike,
    mask: ArrayLike | None,
    name: str,
    chunk: int = 0,
    cache_elements: int | None = None,
):
    """Apply a one-event `kernel(p (n,4), mask (n,))` over the leading batch axes.

    With `chunk > 0`, events are processed `chunk` at a time on a CPU (`lax.map` with
    `batch_size`), bounding memory for kernels with `O(n²)` intermediates; a GPU takes
    larger steps, and a CPU smaller ones where `cache_elements` bounds the O(n³)
    intermediates of a step (`_devices.observable_chunk`).
    """
    p, m = prepare(momenta, mask, name)
    batch = p.shape[:-2]
    if not batch:
        return kernel(p, m)
    pf = p.reshape((-1,) + p.shape[-2:])
    mf = m.reshape((-1,) + m.shape[-1:])
    chunk = observable_chunk(chunk, pf.shape[-2], cache_elements)
    if chunk and pf.shape[0] > chunk:
        out = jax.lax.map(lambda a: kernel(*a), (pf, mf), batch_size=chunk)
    else:
        out = jax.vmap(kernel)(pf, mf)
    return jax.tree.map(lambda x: x.reshape(batch + x.shape[1:]), out)
