"""Tests for diffhep.pdf: the lhagrid1 reader, LHAPDF-style interpolation and the
NNPDF3.1 LO set shipped with Pythia 8."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffhep.pdf import ALL_PIDS, PDF, pythia_pdfdata_dir, read_lhagrid1

NAME = "NNPDF31_lo_as_0118_0000"


@pytest.fixture(scope="module")
def pdf():
    return PDF.load(NAME)


def test_load_by_name_and_path(pdf):
    path = pythia_pdfdata_dir() / f"{NAME}.dat"
    assert path.is_file()
    other = PDF.load(path)
    assert other.xf.shape == pdf.xf.shape == (150, 12 + 38, 12)
    assert PDF.load("NNPDF31_lo_as_0118").name == NAME
    with pytest.raises(FileNotFoundError, match="NNPDF31_lo_as_0118_0000"):
        PDF.load("no_such_set")


def test_knot_values_exact(pdf):
    grid = read_lhagrid1(pythia_pdfdata_dir() / f"{NAME}.dat")
    assert len(grid.subgrids) == 2
    for i, sub in enumerate(grid.subgrids):
        qs = sub.qs if i == len(grid.subgrids) - 1 else sub.qs[:-1]  # a boundary Q belongs to the upper block
        x, q = np.meshgrid(sub.xs, qs, indexing="ij")
        got = np.asarray(pdf.xfxQ_all(x, q))
        for col, pid in enumerate(sub.pids):
            ref = sub.xf[:, : len(qs), col]
            np.testing.assert_allclose(got[..., ALL_PIDS.index(pid)], ref, rtol=1e-14, atol=0)
        # Single-pid API and the absent top quark.
        np.testing.assert_allclose(pdf.xfxQ(0, x, q), sub.xf[:, : len(qs), list(sub.pids).index(21)], rtol=1e-14)
        assert np.all(np.asarray(pdf.xfxQ(6, x, q)) == 0)


def test_momentum_sum_rule(pdf):
    # ∫₀¹ Σ_f x f dx = ∫ Σ_f (x f) x d(ln x), Gauss–Legendre (8 points) on every
    # ln-x knot interval: converged to 1e-15; the LO set gives 1.00145 at 100 GeV.
    t, w = np.polynomial.legendre.leggauss(8)
    lx = np.asarray(pdf.logx)
    a, b = lx[:-1, None], lx[1:, None]
    x = np.exp((a + b) / 2 + (b - a) / 2 * t)
    weights = (b - a) / 2 * w
    total = jnp.sum(jnp.sum(pdf.xfxQ_all(x, 100.0), axis=-1) * x * weights)
    np.testing.assert_allclose(total, 1.0, atol=3e-3)
    np.testing.assert_allclose(total, 1.0014495178828, rtol=1e-9)  # regression value


def test_derivatives_match_finite_differences(pdf):
    f = jax.jit(lambda pid, x, q: pdf.xfxQ(pid, x, q))
    grad = jax.jit(jax.vmap(jax.grad(lambda pid, x, q: pdf.xfxQ(pid, x, q), argnums=(1, 2)), in_axes=(None, 0, 0)))
    x = jnp.asarray([1e-4, 3.3e-3, 0.05, 0.27, 0.6])
    q = jnp.asarray([2.0, 10.0, 91.2, 345.0, 3000.0])
    for pid in (21, 2, -1, 4):
        gx, gq = grad(pid, x, q)
        hx, hq = 1e-7 * x, 1e-6 * q
        fdx = (f(pid, x + hx, q) - f(pid, x - hx, q)) / (2 * hx)
        fdq = (f(pid, x, q + hq) - f(pid, x, q - hq)) / (2 * hq)
        np.testing.assert_allclose(gx, fdx, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(gq, fdq, rtol=1e-5, atol=1e-10)


def test_c1_across_x_knot(pdf):
    # Hermite interpolation: value and d/d ln x are continuous at the knots.
    k = 60
    xk = float(np.exp(pdf.logx[k]))
    d = jax.grad(lambda lx: pdf.xfxQ(21, jnp.exp(lx), 50.0))
    eps = 1e-9
    left, right = d(math.log(xk) - eps), d(math.log(xk) + eps)
    np.testing.assert_allclose(left, right, rtol=1e-6)


def test_out_of_grid(pdf):
    with pytest.raises(ValueError, match=r"x must lie in \[1e-09, 1\]"):
        pdf.xfxQ(21, 1.5, 100.0)
    with pytest.raises(ValueError, match="got x"):
        pdf.xfxQ(21, jnp.asarray([0.1, 1e-12]), 100.0)
    with pytest.raises(ValueError, match="got Q"):
        pdf.xfxQ(21, 0.1, 1.0)
    with pytest.raises(ValueError, match="unknown parton id"):
        pdf.xfxQ(7, 0.1, 100.0)
    with pytest.raises(Exception, match="no extrapolation"):
        jax.jit(lambda x: pdf.xfxQ(21, x, 100.0))(jnp.asarray(2.0)).block_until_ready()


def _write_grid(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def _tiny_grid(nq):
    """A grid of f = 1 + 2 ln x − 0.5 ln Q² (pid 21) and 3 (pid 2): linear in
    (ln x, ln Q²), which LHAPDF's interpolation (cubic or bilinear) reproduces exactly."""
    xs = [1e-3, 1e-2, 0.1, 0.5, 1.0]
    qs = [float(q) for q in np.geomspace(2.0, 100.0, nq)]
    rows = [f"{1 + 2 * math.log(x) - 0.5 * math.log(q * q)!r} 3.0" for x in xs for q in qs]
    return ["Format: lhagrid1", "---", " ".join(map(repr, xs)), " ".join(map(repr, qs)), "21 2", *rows, "---"]


@pytest.mark.parametrize("nq", [2, 5])
def test_tiny_grid_reproduces_linear_function(tmp_path, nq):
    pdf = PDF.load(_write_grid(tmp_path / "tiny.dat", _tiny_grid(nq)))
    x = jnp.asarray([1e-3, 2e-3, 0.07, 0.33, 0.99, 1.0])
    q = jnp.asarray([2.0, 3.1, 17.0, 50.0, 99.0, 100.0])
    expected = 1 + 2 * jnp.log(x) - 0.5 * jnp.log(q * q)
    np.testing.assert_allclose(pdf.xfxQ(21, x, q), expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(pdf.xfxQ(2, x, q), 3.0, rtol=1e-14)
    np.testing.assert_allclose(pdf.xfxQ(-2, x, q), 0.0)


def test_malformed_files(tmp_path):
    good = _tiny_grid(3)
    bad = list(good)
    bad[7] = "0.1 oops"  # line 8: a data row
    with pytest.raises(ValueError, match=r"bad\.dat:8: cannot parse 'oops'"):
        read_lhagrid1(_write_grid(tmp_path / "bad.dat", bad))
    bad = list(good)
    bad[6] = "0.1 0.2 0.3"
    with pytest.raises(ValueError, match=r":7: 3 values on the line but 2 parton ids"):
        read_lhagrid1(_write_grid(tmp_path / "bad.dat", bad))
    with pytest.raises(ValueError, match=r"ends after 14 data rows; expected 5 x knots × 3 Q knots = 15"):
        read_lhagrid1(_write_grid(tmp_path / "bad.dat", good[:-2] + ["---"]))
    with pytest.raises(ValueError, match="must end with a '---'"):
        read_lhagrid1(_write_grid(tmp_path / "bad.dat", good[:-1]))
    bad = list(good)
    bad[2] = "0.1 0.01 0.5 1.0 2.0"
    with pytest.raises(ValueError, match=r":3: x knots must be"):
        read_lhagrid1(_write_grid(tmp_path / "bad.dat", bad))
    with pytest.raises(ValueError, match="unsupported Format"):
        read_lhagrid1(_write_grid(tmp_path / "bad.dat", ["Format: lhagrid2", *good[1:]]))
