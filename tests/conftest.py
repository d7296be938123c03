"""Test configuration: float64 and strict rank promotion, set here and never on
import of diffhep. Runtime shape checks come from `--jaxtyping-packages` in
pyproject.toml."""

import os

# The suite is mostly compilation: with LLVM's optimisation off, XLA compiles the
# same programs, with the same floating-point semantics (no fast math either way),
# into slower code sooner: the default run on 2 cores, 993 → 740 s (2026-11-27). Set
# before JAX starts its backend; subprocesses (CLI, notebooks, two devices) inherit it.
_OPT_FLAG = "--xla_backend_optimization_level=0"
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_OPT_FLAG}".strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
# Start the backend now (one CPU device): an in-process CLI call that later asks XLA for
# one device per core (`cpu_devices_flag`) then changes nothing for the other tests of
# the process, whatever order pytest-xdist gives them.
jax.devices()

import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--accelerator-sizes",
        action="store_true",
        help="run on the CPU with an accelerator's loop choices (`diffhep._devices.WorkSizes`: slot tiers, "
        "static trip counts, GPU-sized batches), to find what a GPU run would trip on without one; slow",
    )


def pytest_sessionstart(session):
    # Here, not at import: diffhep must be imported after jaxtyping's import hook.
    if session.config.getoption("--accelerator-sizes"):
        from diffhep import _devices

        _devices._CPU_SIZES = _devices._ACCELERATOR_SIZES


@pytest.fixture
def key():
    return jr.key(20261125)


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


def massless(p3: np.ndarray) -> np.ndarray:
    """`(…, 3)` three-momenta → `(…, 4)` massless four-momenta."""
    e = np.linalg.norm(p3, axis=-1, keepdims=True)
    return np.concatenate([e, p3], axis=-1)


def cpu_devices_env(n: int) -> dict[str, str]:
    """The environment of a subprocess with `n` XLA CPU devices, keeping this run's
    other `XLA_FLAGS` (the optimisation level above)."""
    from diffhep._devices import _FLAG  # the device-count flag the `diffhep` command sets

    flags = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}={int(n)}"
    return dict(os.environ, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")


def pin_work_sizes(monkeypatch, sizes) -> None:
    """Make `diffhep._devices.work_sizes()` return `sizes` on every backend (it is read
    at trace time, so the caller clears JAX's caches), so that a test of one backend's
    loop choices means the same on a CPU and on a GPU."""
    from diffhep import _devices

    monkeypatch.setattr(_devices, "_CPU_SIZES", sizes)
    monkeypatch.setattr(_devices, "_ACCELERATOR_SIZES", sizes)
