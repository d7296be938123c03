"""diffhep.io: YODA reading and writing, and the shipped ALEPH reference data.

Expected numbers are copied by hand from ``diffhep/data/ALEPH_2004_91GeV.yoda``
(a copy of the Rivet reference file of ALEPH_2004_S5765862; origin in
``diffhep/data/README.md``).
"""

import os
import re

import numpy as np
import pytest

from diffhep import Events, io

THRUST = "/REF/ALEPH_2004_S5765862/d54-x01-y01"
C_PARAM = "/REF/ALEPH_2004_S5765862/d86-x01-y01"
Y23 = "/REF/ALEPH_2004_S5765862/d157-x01-y01"


def test_aleph_file_structure():
    scatters = io.read_yoda(io.aleph_yoda_path())
    assert list(scatters) == [THRUST, C_PARAM, Y23]
    t = scatters[THRUST]
    assert len(t) == 42 and t.path == THRUST
    assert dict(t.annotations) == {"IsRef": "1", "Path": THRUST, "Title": "~", "Type": "Scatter2D"}
    assert t.title == ""
    # First and last rows, copied from the file.
    first = [t.x[0], t.x_err_minus[0], t.x_err_plus[0], t.y[0], t.y_err_minus[0], t.y_err_plus[0]]
    assert first == [5.85e-01, 5.0e-03, 5.0e-03, 1.15e-03, 7.034913e-04, 7.034913e-04]
    assert (t.x[-1], t.y[-1], t.y_err_plus[-1]) == (9.95e-01, 1.31186e00, 2.015322e-01)
    c, y = scatters[C_PARAM], scatters[Y23]
    assert len(c) == 50 and (c.x[0], c.y[0], c.y_err_minus[0]) == (1.0e-02, 6.711e-02, 6.522147e-02)
    assert len(y) == 49 and (y.x[0], y.y[0], y.y_err_minus[0]) == (1.1, 1.38e-03, 2.73313e-04)
    assert (y.x[-1], y.y[-1]) == (1.07e01, 5.0e-05)


def test_aleph_event_shapes_bins():
    shapes = io.aleph_event_shapes()
    assert {k: s.path for k, s in shapes.items()} == io.ALEPH_91GEV_PATHS
    assert io.ALEPH_91GEV_X == {"thrust": "T", "c_parameter": "C", "y23": "-ln y23"}
    # Edges come out as clean decimals (rounded to 12 significant digits).
    np.testing.assert_array_equal(shapes["thrust"].edges, [round(0.58 + 0.01 * i, 12) for i in range(43)])
    np.testing.assert_array_equal(shapes["c_parameter"].edges, [round(0.02 * i, 12) for i in range(51)])
    np.testing.assert_array_equal(shapes["y23"].edges, [round(1.0 + 0.2 * i, 12) for i in range(50)])
    assert shapes["thrust"].edges[0] == 0.58 and shapes["thrust"].edges[-1] == 1.0
    # Normalised distributions: the integral over the bins is 1 to the file's rounding.
    for s in shapes.values():
        assert abs(np.sum(s.y * s.widths) - 1.0) < 1e-6
    # Read-only arrays: the data cannot be changed by accident.
    with pytest.raises(ValueError):
        shapes["thrust"].y[0] = 0.0


def test_round_trip(tmp_path):
    scatters = io.read_yoda(io.aleph_yoda_path())
    out = tmp_path / "copy.yoda"
    io.write_yoda(out, scatters)
    back = io.read_yoda(out)
    assert list(back) == list(scatters)
    for p, s in scatters.items():
        b = back[p]
        for name in ("x", "x_err_minus", "x_err_plus", "y", "y_err_minus", "y_err_plus"):
            np.testing.assert_array_equal(getattr(b, name), getattr(s, name))
        assert dict(b.annotations) == dict(s.annotations)
    # Exact round trip of arbitrary floats, from an iterable of objects.
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 1, 5))
    s = io.Scatter2D("/A/b", x, x * 0, x * 0, rng.normal(size=5), rng.uniform(size=5), rng.uniform(size=5),
                     annotations={"Title": "a title"})
    io.write_yoda(out, [s])  # overwrites the earlier file
    (b,) = io.read_yoda(out).values()
    np.testing.assert_array_equal(b.y, s.y)
    np.testing.assert_array_equal(b.y_err_plus, s.y_err_plus)
    assert b.title == "a title" and b.path == "/A/b"
    assert os.listdir(tmp_path) == ["copy.yoda"]  # no temporary file left behind


def _write(tmp_path, text, name="f.yoda"):
    path = tmp_path / name
    path.write_text(text)
    return path


V2_BLOCK = """BEGIN YODA_SCATTER2D_V2 /X/y
Path: /X/y
Type: Scatter2D
---
# xval xerr- xerr+ yval yerr- yerr+
0.5 0.5 0.5 2.0 0.1 0.2
1.5 0.5 0.5 3.0 0.1 0.2
END YODA_SCATTER2D_V2
"""


def test_v1_scatter_and_skipped_blocks(tmp_path):
    text = """# BEGIN YODA_HISTO1D /X/h
Path=/X/h
# xlow xhigh sumw
0 1 2
# END YODA_HISTO1D

# BEGIN YODA_SCATTER2D /X/s
Path=/X/s
Title=old style
Type=Scatter2D
# xval xerr- xerr+ yval yerr- yerr+
1.0 0.5 0.5 4.0 0.3 0.4
2.0 0.5 0.5 5.0 0.3 0.4
# END YODA_SCATTER2D
"""
    (s,) = io.read_yoda(_write(tmp_path, text)).values()  # the histogram is skipped
    assert s.path == "/X/s" and s.title == "old style"
    np.testing.assert_array_equal(s.edges, [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(s.y_err_plus, [0.4, 0.4])


def test_estimate1d_v3(tmp_path):
    text = """BEGIN YODA_ESTIMATE1D_V3 /E/x
Path: /E/x
Title: ~
Type: Estimate1D
---
Edges(A1): [0.0, 1.0, 3.0]
ErrorLabels: ["stat", "syst"]
# value\terrDn(1)\terrUp(1)\terrDn(2)\terrUp(2)
nan\t---\t---\t---\t---
2.0\t-0.3\t0.3\t-0.4\t0.5
4.0\t-0.6\t0.6\t---\t---
nan\t---\t---\t---\t---
END YODA_ESTIMATE1D_V3
"""
    s = io.read_yoda(_write(tmp_path, text))["/E/x"]
    np.testing.assert_array_equal(s.x, [0.5, 2.0])
    np.testing.assert_array_equal(s.edges, [0.0, 1.0, 3.0])
    np.testing.assert_array_equal(s.y, [2.0, 4.0])
    np.testing.assert_allclose(s.y_err_minus, [0.5, 0.6])
    np.testing.assert_allclose(s.y_err_plus, [np.hypot(0.3, 0.5), 0.6])


@pytest.mark.parametrize(
    ("replace", "by", "line", "message"),
    [
        ("1.5 0.5 0.5 3.0 0.1 0.2", "1.5 0.5 0.5 3.O 0.1 0.2", 7, "cannot parse '3.O'"),
        ("1.5 0.5 0.5 3.0 0.1 0.2", "1.5 0.5 0.5 3.0 0.1", 7, "5 columns; expected 6"),
        ("Type: Scatter2D", "Type Scatter2D", 3, "annotation"),
        ("END YODA_SCATTER2D_V2", "END YODA_SCATTER1D_V2", 8, "closes the block opened on line 2"),
    ],
)
def test_malformed_line_is_named(tmp_path, replace, by, line, message):
    path = _write(tmp_path, "\n" + V2_BLOCK.replace(replace, by))  # leading blank line: numbering from 1
    with pytest.raises(ValueError, match=re.escape(f"{path}:{line + 1}: ") + ".*" + re.escape(message)):
        io.read_yoda(path)


def test_unclosed_and_duplicate_blocks(tmp_path):
    with pytest.raises(ValueError, match="opened on line 1 is never closed"):
        io.read_yoda(_write(tmp_path, V2_BLOCK.replace("END YODA_SCATTER2D_V2\n", "")))
    with pytest.raises(ValueError, match=r"f\.yoda:17: object '/X/y' appears twice"):
        io.read_yoda(_write(tmp_path, V2_BLOCK + "\n" + V2_BLOCK))
    good = io.read_yoda(_write(tmp_path, V2_BLOCK))["/X/y"]
    np.testing.assert_array_equal(good.edges, [0.0, 1.0, 2.0])


def test_scatter_validation():
    with pytest.raises(ValueError, match="different lengths"):
        io.Scatter2D("/a", [1.0], [0.5], [0.5], [1.0, 2.0], [0.1], [0.1])
    with pytest.raises(ValueError, match="y_err_minus must be >= 0"):
        io.Scatter2D("/a", [1.0], [0.5], [0.5], [1.0], [-0.1], [0.1])
    gap = io.Scatter2D("/a", [1.0, 3.0], [0.5, 0.5], [0.5, 0.5], [1.0, 2.0], [0.1, 0.1], [0.1, 0.1])
    with pytest.raises(ValueError, match="contiguous"):
        gap.edges


def _events(n=5, cap=4, seed=0):
    """Small valid events: real particles first, zero padding, positive energies."""
    rng = np.random.default_rng(seed)
    mult = rng.integers(2, cap + 1, n)
    mask = np.arange(cap)[None, :] < mult[:, None]
    p3 = rng.normal(size=(n, cap, 3))
    p = np.concatenate([np.linalg.norm(p3, axis=-1, keepdims=True), p3], axis=-1) * mask[..., None]
    pdg = np.where(mask, 21, 0).astype(np.int32)
    return Events(p, mask, pdg, rng.uniform(0.1, 1.0, n))


def test_events_file_round_trip(tmp_path):
    # Bit-exact arrays and metadata back; trailing unused slots dropped; the file is
    # written atomically (nothing else left in the folder, which the writer creates) and
    # readable by others.
    ev = _events(cap=6)
    ev = Events(np.pad(np.asarray(ev.momenta), ((0, 0), (0, 3), (0, 0))), np.pad(np.asarray(ev.mask), ((0, 0), (0, 3))),
                np.pad(np.asarray(ev.pdg), ((0, 0), (0, 3))), ev.weights)
    path = tmp_path / "run" / "ev.npz"
    io.save_events(path, ev, alpha_s=0.118, seed=7)
    back, meta = io.load_events(path)
    assert meta == {"format": io.EVENTS_FORMAT, "alpha_s": 0.118, "seed": 7}
    width = int(np.flatnonzero(np.asarray(ev.mask).any(axis=0))[-1]) + 1
    assert back.capacity == width < ev.capacity
    for name in ("momenta", "mask", "pdg", "weights"):
        np.testing.assert_array_equal(np.asarray(getattr(back, name)), np.asarray(getattr(ev, name))[:, :width]
                                      if name != "weights" else np.asarray(ev.weights))
    assert os.listdir(path.parent) == ["ev.npz"]
    assert path.stat().st_mode & 0o777 == 0o644


def _write_events(path, **changes):
    ev = _events()
    arrays = {"momenta": np.asarray(ev.momenta), "mask": np.asarray(ev.mask), "pdg": np.asarray(ev.pdg),
              "weights": np.asarray(ev.weights), "metadata": np.array('{"format": "diffhep-events/1"}')}
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {"mask": None}, r"missing array\(s\) mask"),
        (lambda a: {"momenta": a["momenta"][..., :3]}, r"momenta must be a float array \(n_events, capacity, 4\)"),
        (lambda a: {"mask": a["mask"].astype(int)}, "mask must be a bool array"),
        (lambda a: {"pdg": a["pdg"].astype(float)}, "pdg must be an integer array"),
        (lambda a: {"weights": a["weights"][:-1]}, r"weights must be a float array \(5,\)"),
        (lambda a: {"momenta": np.where(np.arange(5)[:, None, None] == 3, np.nan, a["momenta"])}, "event 3 has a momentum component that is NaN"),
        (lambda a: {"weights": a["weights"] * np.array([1, 1, -1, 1, 1])}, "event 2 has a weight that is negative"),
        (lambda a: {"momenta": a["momenta"] + (~a["mask"])[..., None] * 1.0}, "padding slot .* non-zero momentum"),
        (lambda a: {"pdg": np.where(a["mask"], a["pdg"], 22)}, "padding slot .* non-zero PDG code"),
        (lambda a: {"momenta": a["momenta"] * np.array([-1, 1, 1, 1])}, "event 0 has a particle with negative energy"),
        (lambda a: {"metadata": np.array('{"format": "other/2"}')}, "metadata format is 'other/2'"),
        (lambda a: {"metadata": np.array("not json")}, "metadata is not valid JSON"),
        (lambda a: {"metadata": np.array([1, 2])}, "metadata must be a 0-d string array"),
    ],
)
def test_events_file_rejects_malformed(tmp_path, change, message):
    path = tmp_path / "bad.npz"
    _write_events(path, **change(_write_events(tmp_path / "good.npz")))
    io.load_events(tmp_path / "good.npz")
    with pytest.raises(ValueError, match=message) as info:
        io.load_events(path)
    assert str(path) in str(info.value)


def test_events_file_not_npz_or_pickled(tmp_path):
    text = tmp_path / "events.npz"
    text.write_text("E px py pz\n")
    with pytest.raises(ValueError, match="not a NumPy .npz file"):
        io.load_events(text)
    pickled = tmp_path / "pickled.npz"
    _write_events(pickled, metadata=np.array({"format": "diffhep-events/1"}, dtype=object))
    with pytest.raises(ValueError, match="no pickled objects"):
        io.load_events(pickled)
    with pytest.raises(FileNotFoundError):
        io.load_events(tmp_path / "missing.npz")
