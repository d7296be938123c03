"""The precision of small matrix products.

On a GPU, XLA computes a float32 `dot`/`einsum`/`matmul` in TF32 by default (a 10-bit
mantissa: relative errors of 1e-3, enough to change thrust's hemisphere signs or a
Durham 1 − cos on an H100). Products whose results are physics ask for `FULL`; on a
CPU it changes nothing (measured: the same times and values).
"""

import jax

FULL = jax.lax.Precision.HIGHEST
"""`precision=FULL`: full float32 (and float64) products on every backend."""
