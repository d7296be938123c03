"""Standard Model parameters in MadGraph's ``sm`` scheme, as a differentiable PyTree.

The independent inputs are those of a MadGraph ``param_card.dat`` (blocks MASS,
DECAY, SMINPUTS, YUKAWA). Derived quantities (M_W, sin²θ_W, e, g_w, the HELAS
couplings ``GC_*``, …) are properties computed from the inputs with jnp, so
`jax.grad` flows from any matrix element back to every card entry. The formulas
are those of the UFO ``sm`` model (``Parameters_sm.cc`` in MadGraph's standalone
output): the electroweak inputs are α_EW(M_Z)⁻¹, G_F and M_Z.
"""

import importlib.resources
import math
import os
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

# (block, PDG id) -> field name, for the entries of the MG5 sm card that we read.
_CARD_ENTRIES: dict[tuple[str, int], str] = {
    ("mass", 5): "MB",
    ("mass", 6): "MT",
    ("mass", 15): "MTA",
    ("mass", 23): "MZ",
    ("mass", 25): "MH",
    ("decay", 6): "WT",
    ("decay", 23): "WZ",
    ("decay", 24): "WW",
    ("decay", 25): "WH",
    ("sminputs", 1): "aEWM1",
    ("sminputs", 2): "Gf",
    ("sminputs", 3): "aS",
    ("yukawa", 5): "ymb",
    ("yukawa", 6): "ymt",
    ("yukawa", 15): "ymtau",
}

_MASSES_AND_WIDTHS = ("MB", "MT", "MTA", "MZ", "MH", "WT", "WZ", "WW", "WH")


def _scalar(x: ArrayLike) -> Array:
    """Convert a card entry to a 0-d array of the default float dtype."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def default_param_card() -> str:
    """Path of the MG5 ``sm`` model ``param_card.dat`` shipped with diffhep."""
    return os.fspath(importlib.resources.files("diffhep.me") / "data" / "param_card.dat")


def read_param_card(path: str | os.PathLike) -> dict[str, dict[int, float]]:
    """Parse the ``BLOCK`` and ``DECAY`` entries of an SLHA/MadGraph param card.

    **Arguments:**
    - `path`: the ``param_card.dat`` file.

    **Returns:** `{block_name_lowercase: {pdg_id: value}}`; widths are under
    ``"decay"``. Comments (``#``) and blocks with several indices are skipped.
    """
    blocks: dict[str, dict[int, float]] = {}
    current: str | None = None
    with open(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            head = words[0].lower()
            if head == "block":
                current = words[1].lower() if len(words) > 1 else None
                blocks.setdefault(current or "", {})
                continue
            if head == "decay":
                current = None  # a DECAY line ends the previous block
                if len(words) < 3:
                    raise ValueError(f"{path}:{lineno}: malformed DECAY line {raw.strip()!r}")
                blocks.setdefault("decay", {})[int(words[1])] = float(words[2])
                continue
            if current is None or len(words) != 2:
                continue  # decay-channel lines, or multi-index blocks we do not need
            try:
                blocks[current][int(words[0])] = float(words[1])
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: cannot parse {raw.strip()!r}") from e
    return blocks


def _concrete(x) -> np.ndarray | None:
    """`x` as a NumPy array when its value is known at trace time, else `None`.

    NumPy, not jnp: under `jit`, jnp operations on constants are traced too, so a
    Python `bool` of `jnp.any(x < 0)` fails even for a concrete `x`.
    """
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None


def _checked(name: str, strict: bool) -> Callable[[ArrayLike], Array]:
    """Converter for field `name`: a 0-d float array, with a runtime check if traced.

    Concrete values are checked in `SMParameters.__check_init__` (a `ValueError`
    naming the value); traced ones (e.g. `params.replace(MT=mt)` inside `jit` or
    `grad`) get `eqx.error_if`, which raises when the compiled code runs.
    """
    bound = "positive" if strict else ">= 0"

    def convert(x: ArrayLike) -> Array:
        x = _scalar(x)
        if _concrete(x) is None:
            bad = (x <= 0) if strict else (x < 0)
            x = eqx.error_if(x, bad, f"SMParameters.{name} must be {bound}")
        return x

    return convert


class SMParameters(eqx.Module):
    """Independent parameters of MadGraph's ``sm`` model, a differentiable PyTree.

    Masses and widths are in GeV; every field is a differentiable 0-d array leaf.
    Derived parameters (`MW`, `sw2`, `ee`, `G`, the couplings `GC_*`, …) are
    properties computed from the fields, so gradients with respect to e.g. `MZ`
    include its effect through `MW` and the weak mixing angle, exactly as
    MadGraph derives them.

    Widths enter fixed-width Breit–Wigner propagators `1/(p² − M² + i M Γ)`.
    The strong coupling `aS` is fixed (no running): `G = sqrt(4π aS)`.

    Build it with `SMParameters.from_param_card()` (the MG5 ``sm`` card by
    default) and change entries with `eqx.tree_at` or `replace`.
    """

    MB: Float[Array, ""] = eqx.field(converter=_checked("MB", strict=False))
    MT: Float[Array, ""] = eqx.field(converter=_checked("MT", strict=False))
    MTA: Float[Array, ""] = eqx.field(converter=_checked("MTA", strict=False))
    MZ: Float[Array, ""] = eqx.field(converter=_checked("MZ", strict=False))
    MH: Float[Array, ""] = eqx.field(converter=_checked("MH", strict=False))
    WT: Float[Array, ""] = eqx.field(converter=_checked("WT", strict=False))
    WZ: Float[Array, ""] = eqx.field(converter=_checked("WZ", strict=False))
    WW: Float[Array, ""] = eqx.field(converter=_checked("WW", strict=False))
    WH: Float[Array, ""] = eqx.field(converter=_checked("WH", strict=False))
    aEWM1: Float[Array, ""] = eqx.field(converter=_checked("aEWM1", strict=True))
    Gf: Float[Array, ""] = eqx.field(converter=_checked("Gf", strict=True))
    aS: Float[Array, ""] = eqx.field(converter=_checked("aS", strict=True))
    ymb: Float[Array, ""] = eqx.field(converter=_scalar)
    ymt: Float[Array, ""] = eqx.field(converter=_scalar)
    ymtau: Float[Array, ""] = eqx.field(converter=_scalar)

    def __check_init__(self):
        # Concrete values only; traced ones carry an `eqx.error_if` from their converter.
        for name in _MASSES_AND_WIDTHS:
            value = _concrete(getattr(self, name))
            if value is not None and np.any(value < 0):
                raise ValueError(f"SMParameters.{name} = {value} GeV is negative; masses and widths must be >= 0")
        for name in ("aEWM1", "Gf", "aS"):
            value = _concrete(getattr(self, name))
            if value is not None and np.any(value <= 0):
                raise ValueError(f"SMParameters.{name} = {value} must be positive")

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_param_card(cls, path: str | os.PathLike | None = None, **overrides: ArrayLike) -> "SMParameters":
        """Read a MadGraph ``param_card.dat``.

        **Arguments:**
        - `path`: the card; `None` reads the MG5 ``sm`` model card shipped with
          diffhep (M_t = 173, Γ_t = 1.4915, M_Z = 91.188, Γ_Z = 2.441404,
          1/α_EW = 132.507, G_F = 1.16639e-5, α_s = 0.118).
        - `overrides`: field values that replace the card's, e.g. `aS=0.13`.

        **Returns:** an `SMParameters`. Entries missing from the card take the
        MG5 ``sm`` defaults. Raises `ValueError` for a negative mass or width.
        """
        default = read_param_card(default_param_card())
        card = read_param_card(path) if path is not None else default
        values = {}
        for (block, pdg), name in _CARD_ENTRIES.items():
            if pdg in card.get(block, {}):
                values[name] = card[block][pdg]
            else:
                values[name] = default[block][pdg]
        unknown = set(overrides) - set(values)
        if unknown:
            raise ValueError(f"unknown SMParameters fields {sorted(unknown)}; known: {sorted(values)}")
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: ArrayLike) -> "SMParameters":
        """A copy with some fields changed, e.g. `params.replace(MT=172.5)`."""
        fields = {name: getattr(self, name) for name in _CARD_ENTRIES.values()}
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"unknown SMParameters fields {sorted(unknown)}; known: {sorted(fields)}")
        fields.update(changes)
        return type(self)(**fields)

    # ------------------------------------------------- derived (UFO sm model)
    @property
    def aEW(self) -> Array:
        """α_EW = 1/aEWM1."""
        return 1.0 / self.aEWM1

    @property
    def MW(self) -> Array:
        """W mass in GeV from (α_EW, G_F, M_Z), as in the UFO ``sm`` model."""
        mz2 = self.MZ**2
        return jnp.sqrt(mz2 / 2.0 + jnp.sqrt(mz2**2 / 4.0 - (self.aEW * math.pi * mz2) / (self.Gf * math.sqrt(2.0))))

    @property
    def sw2(self) -> Array:
        """sin²θ_W = 1 − M_W²/M_Z²."""
        return 1.0 - self.MW**2 / self.MZ**2

    @property
    def cw(self) -> Array:
        return jnp.sqrt(1.0 - self.sw2)

    @property
    def sw(self) -> Array:
        return jnp.sqrt(self.sw2)

    @property
    def ee(self) -> Array:
        """Electric charge e = sqrt(4π α_EW)."""
        return 2.0 * jnp.sqrt(self.aEW) * math.sqrt(math.pi)

    @property
    def g1(self) -> Array:
        return self.ee / self.cw

    @property
    def gw(self) -> Array:
        return self.ee / self.sw

    @property
    def vev(self) -> Array:
        """Higgs vacuum expectation value in GeV."""
        return 2.0 * self.MW * self.sw / self.ee

    @property
    def yt(self) -> Array:
        return self.ymt * math.sqrt(2.0) / self.vev

    @property
    def yb(self) -> Array:
        return self.ymb * math.sqrt(2.0) / self.vev

    @property
    def G(self) -> Array:
        """Strong coupling g_s = sqrt(4π α_s)."""
        return 2.0 * jnp.sqrt(self.aS) * math.sqrt(math.pi)

    def couplings(self) -> dict[str, Array]:
        """The HELAS vertex couplings of the UFO ``sm`` model that our processes use.

        **Returns:** `{name: complex 0-d array}`, with MadGraph's names and values:
        `GC_3 = −i e` (photon–fermion, scaled by the charge in the vertex call),
        `GC_10 = −g_s` (three-gluon), `GC_11 = i g_s` (quark–gluon),
        `GC_12 = i g_s²` (four-gluon), `GC_50 = −i e c_w/(2 s_w)` and
        `GC_59 = i e s_w/(2 c_w)` (Z–fermion), `GC_100 = i e/(√2 s_w)` (W–quark,
        unit CKM).
        """
        i = 1j
        ee, cw, sw, G = self.ee, self.cw, self.sw, self.G
        return {
            "GC_3": -(ee * i),
            "GC_10": -G + 0j,
            "GC_11": i * G,
            "GC_12": i * G**2,
            "GC_50": -(cw * ee * i) / (2.0 * sw),
            "GC_59": (ee * i * sw) / (2.0 * cw),
            "GC_100": (ee * i) / (sw * math.sqrt(2.0)),
        }

    def masses(self) -> dict[str, Array]:
        """`{name: value}` of the masses and widths in GeV used in HELAS calls,
        including the derived `MW` and the constant `ZERO`."""
        out = {name: getattr(self, name) for name in _MASSES_AND_WIDTHS}
        out["MW"] = self.MW
        out["ZERO"] = jnp.zeros_like(self.MT)
        return out
