"""`diffhep fit-alphas --data FILE.yoda --histogram PATH --sqrt-s E`: reading any YODA
table into the fit variable, hadronisation corrections generated with Pythia 8 on
the fly (and cached), and the command end to end with tiny event counts."""

import json

import numpy as np
import pytest

from diffhep.cli import main
from diffhep.fit import _hadronization as had
from diffhep.fit._data import read_data_table, recognise_x_variable
from diffhep.io import Scatter2D, aleph_event_shapes, write_yoda

THRUST = "/REF/ALEPH_2004_S5765862/d54-x01-y01"


def _scatter(path, edges, y, err=None, title="~"):
    edges = np.asarray(edges, float)
    y = np.asarray(y, float)
    err = 0.05 * y + 1e-3 if err is None else np.asarray(err, float)
    half = np.diff(edges) / 2
    return Scatter2D(path, edges[:-1] + half, half, half, y, err, err, {"Title": title})


def _coarse_thrust(factor=3):
    """The ALEPH thrust table (x = T) with `factor` neighbouring bins merged."""
    sc = aleph_event_shapes()["thrust"]
    edges = sc.edges[::factor]
    y = sc.y.reshape(-1, factor).mean(axis=1)
    err = np.sqrt((sc.y_err_plus.reshape(-1, factor) ** 2).sum(axis=1)) / factor
    return _scatter("/REF/TEST/thrust_coarse", edges, y, err)


@pytest.mark.parametrize(
    "observable, edges, x",
    [
        ("thrust", [0.58, 0.7, 1.0], "T"),
        ("thrust", [0.0, 0.1, 0.42], "1-T"),
        ("thrust", [0.0, 0.5], "1-T"),
        ("c", [0.0, 0.5, 1.0], "C"),
        ("y23", [1.0, 5.0, 10.8], "-ln y23"),
        ("y23", [0.0, 0.01, 0.3], "y23"),
        ("y23", [-10.0, -5.0, -1.2], "ln y23"),
    ],
)
def test_recognise_x_variable(observable, edges, x):
    assert recognise_x_variable(observable, np.array(edges)) == x


@pytest.mark.parametrize(
    "observable, edges", [("thrust", [0.4, 0.6]), ("c", [0.0, 1.5]), ("y23", [-1.0, 0.1])]
)
def test_unrecognised_x_variable_names_the_option(observable, edges):
    with pytest.raises(ValueError, match="--x-variable"):
        recognise_x_variable(observable, np.array(edges))


def test_thrust_table_is_mirrored_into_one_minus_t(tmp_path):
    sc = aleph_event_shapes()["thrust"]
    f = tmp_path / "t.yoda"
    write_yoda(f, [sc])
    t = read_data_table(f, sc.path, "thrust")
    assert t.x_variable == "T" and t.observable == "thrust"
    np.testing.assert_allclose(t.edges, (1.0 - sc.edges)[::-1], atol=1e-15)
    np.testing.assert_array_equal(t.density, sc.y[::-1])
    assert t.integral == pytest.approx(np.sum(sc.y * np.diff(sc.edges)))
    # The explicit option gives the same, and one that contradicts the observable is refused.
    assert np.array_equal(read_data_table(f, sc.path, "thrust", "T").edges, t.edges)
    with pytest.raises(ValueError, match="--x-variable 'C' is not one of T, 1-T"):
        read_data_table(f, sc.path, "thrust", "C")


def test_linear_and_log_y23_tables(tmp_path):
    edges = np.array([0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3])
    y = np.array([60.0, 10.0, 4.0, 1.5, 0.5, 0.1])
    minus_ln = -np.log(edges[1:])[::-1]
    f = tmp_path / "y.yoda"
    write_yoda(f, [_scatter("/A/lin", edges, y), _scatter("/A/ln", -minus_ln[::-1], y[1:][::-1] * 0 + 0.1)])
    t = read_data_table(f, "/A/lin", "y23")
    assert t.x_variable == "y23"
    np.testing.assert_allclose(t.edges, minus_ln, rtol=1e-14)  # the y23 = 0 bin has no image: dropped
    # Each bin keeps its integral.
    np.testing.assert_allclose((t.density * np.diff(t.edges))[::-1], y[1:] * np.diff(edges[1:]), rtol=1e-13)
    ln = read_data_table(f, "/A/ln", "y23")
    assert ln.x_variable == "ln y23"
    np.testing.assert_allclose(ln.edges, minus_ln, rtol=1e-11)  # YODA edges: 12 digits


def test_bad_tables(tmp_path):
    f = tmp_path / "bad.yoda"
    write_yoda(f, [_scatter("/A/xsec", [0.0, 0.1, 0.2], [300.0, 100.0], title="Thrust"), _scatter("/A/c", [0.0, 0.5, 1.0], [1.0, 1.0])])
    with pytest.raises(ValueError, match=r"integrates to 40 .* normalised"):
        read_data_table(f, "/A/xsec")  # the title names thrust
    with pytest.raises(ValueError, match="not in .*available: /A/xsec, /A/c"):
        read_data_table(f, "/A/nope", "c")
    with pytest.raises(ValueError, match="--histogram is required"):
        read_data_table(f, None, "c")
    with pytest.raises(ValueError, match="give --observable"):
        read_data_table(f, "/A/c")  # no title
    with pytest.raises(ValueError, match="no such file"):
        read_data_table(tmp_path / "missing.yoda", "/A/c", "c")


def test_bin_index_and_correction_factors():
    edges = np.array([0.0, 0.1, 0.2, 0.3])
    idx = had.bin_index(np.array([-1e-17, 0.05, 0.1, 0.3, 0.3 + 1e-9, np.nan, np.inf]), edges)
    np.testing.assert_array_equal(idx, [0, 0, 1, 2, -1, -1, -1])
    # 6 events: parton bins → hadron bins. Bin 0: P = 3, H = 2, N11 = 2, M = 1.
    bp = np.array([0, 0, 0, 1, 1, -1])
    bh = np.array([0, 0, 1, 1, 2, 2])
    c = had.correction_factors(bp, bh, 4)
    np.testing.assert_allclose(c["factor"][:3], [2 / 3, 2 / 2, np.nan])  # bin 2: no parton events
    np.testing.assert_allclose(c["factor_err"][0], 2 / 3 * np.sqrt(1 / (2 * 3)))
    assert np.isnan(c["factor"][3]) and np.isnan(c["factor_err"][3])
    assert np.all(np.isnan(c["bootstrap_err"]))  # no rng: no bootstrap


def test_moderate_mask_and_longest_run():
    c = np.array([0.5, 1.0, 1.1, np.nan, 0.9, 1.0, 1.2, 1.3])
    err = np.full_like(c, 0.01)
    mask = had.moderate_mask([(c, err), (c, err)])
    np.testing.assert_array_equal(mask, [False, True, True, False, True, True, True, False])
    assert had.longest_run(mask) == (4, 7)
    assert had.longest_run(np.zeros(3, bool)) == (0, 0)
    assert not had.moderate_mask([(c, 0.2 * c)]).any()  # 20 % MC errors


def test_cached_corrections_do_not_regenerate(tmp_path, monkeypatch):
    calls = []

    def fake(sqrt_s, observable, edges, n_events, setting, seed, log=None):
        calls.append((sqrt_s, setting))
        n = len(edges) - 1
        return {"sqrt_s": sqrt_s, "observable": observable, "setting": setting, "edges": np.asarray(edges),
                "factor": np.r_[np.full(n - 1, 1.1), np.nan], "factor_err": np.full(n, 0.01),
                "n_parton": np.ones(n), "n_hadron": np.ones(n), "n_both": np.ones(n), "wall_s": 0.0}

    monkeypatch.setattr(had, "compute_corrections", fake)
    edges = np.linspace(0.0, 0.3, 4)
    first, hit = had.cached_corrections(133.0, "thrust", edges, 1000, "default", 1, cache_dir=tmp_path)
    assert not hit
    again, hit = had.cached_corrections(133.0, "thrust", edges, 1000, "default", 1, cache_dir=tmp_path)
    assert hit and len(calls) == 1
    np.testing.assert_array_equal(again["factor"], first["factor"])  # NaN survives the JSON round trip
    np.testing.assert_array_equal(again["edges"], edges)
    # Every input is in the key.
    for args in [(133.0, "thrust", edges, 2000, "default", 1), (133.0, "thrust", edges[:-1], 1000, "default", 1),
                 (91.2, "thrust", edges, 1000, "default", 1), (133.0, "thrust", edges, 1000, "sigma_pt_up", 1),
                 (133.0, "c", edges, 1000, "default", 1), (133.0, "thrust", edges, 1000, "default", 2)]:
        assert not had.cached_corrections(*args, cache_dir=tmp_path)[1]
    assert len(calls) == 7 and len(list(tmp_path.glob("*.json"))) == 7


def test_on_the_fly_corrections_reproduce_the_shipped_table():
    # Default setting, 1 − T in the ALEPH bins, an independent seed: pulls against the
    # shipped table (2e5 events) in the bins with >= 150 events here. Their χ² must not
    # be improbable (p > 1e-3, Wilson–Hilferty: z < 3.09); the delta-method errors
    # themselves are checked against a bootstrap in tests/test_hadronization.py.
    edges_t, shipped, shipped_err = had.load_corrections("thrust")
    edges = (1.0 - edges_t)[::-1]
    new = had.compute_corrections(91.2, "thrust", edges, 5000, "default", seed=424242)
    assert new["n_failed"] == 0 and new["n_parton"].sum() == 5000
    np.testing.assert_array_equal(new["edges"], edges)
    ok = np.minimum(new["n_parton"], new["n_hadron"]) >= 150
    k = int(ok.sum())
    assert k >= 6
    pull = (new["factor"] - shipped[::-1]) / np.hypot(new["factor_err"], shipped_err[::-1])
    assert np.all(np.abs(pull[ok]) < 4.0), pull[ok]
    z = ((np.sum(pull[ok] ** 2) / k) ** (1 / 3) - (1 - 2 / (9 * k))) / np.sqrt(2 / (9 * k))
    assert z < 3.09, pull[ok]


def _run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(["fit-alphas", *args])
    return exc.value.code, capsys.readouterr()


def test_cli_yoda_fit_end_to_end(tmp_path, capsys):
    data = tmp_path / "data.yoda"
    write_yoda(data, [aleph_event_shapes()["c_parameter"], _coarse_thrust()])
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    code, io = _run(
        capsys, "--data", str(data), "--histogram", "/REF/TEST/thrust_coarse", "--sqrt-s", "91.2",
        "--observable", "thrust", "--had-events", "3000", "--mc-events", "2000", "--max-steps", "2",
        "--no-scan", "--had-max-rel-err", "0.15", "--had-cache", str(cache), "--quiet", "--out", str(out),
    )
    assert code == 0, io.err
    r = json.loads((out / "result.json").read_text())
    for k in ("alpha_s", "alpha_s_err", "alpha_s_err_exp", "alpha_s_err_mc", "alpha_s_err_hadronization", "chi2_ndf"):
        assert np.isfinite(r[k]) and r[k] >= 0, k
    assert 0.06 < r["alpha_s"] < 0.22
    assert r["alpha_s_err_exp"] <= r["alpha_s_err"]  # the latter adds the corrections' MC errors
    assert r["truth_alpha_s"] is None and r["sqrt_s"] == 91.2
    assert r["x_variable"] == "T" and r["fit_variable"] == "1-T"
    lo, hi = r["fit_range"]
    assert 0.0 <= lo < hi <= 0.42 and (hi - lo) >= 3 * 0.03 - 1e-9
    assert r["hadronization"]["from_cache"] == {"default": False, "sigma_pt_down": False, "sigma_pt_up": False}
    assert set(r["hadronization_shifts"]) == {"sigma_pt_down", "sigma_pt_up"}
    assert (out / "fit_thrust.png").stat().st_size > 1000
    assert "thrust  alpha_s =" in io.out
    # The three tables are cached: the same request is read back, not regenerated.
    assert len(list(cache.glob("thrust_91.2GeV_*.json"))) == 3
    edges = np.array(r["hadronization"]["edges"])
    table, hit = had.cached_corrections(91.2, "thrust", edges, 3000, "sigma_pt_up", seed=3, cache_dir=cache)
    assert hit
    np.testing.assert_allclose(table["factor"][2], r["hadronization"]["factor"]["sigma_pt_up"][2])


@pytest.mark.parametrize(
    "args, words",
    [
        (("--histogram", "/REF/nope", "--sqrt-s", "91.2"), ("--histogram '/REF/nope'", "available", THRUST)),
        (("--histogram", THRUST, "--sqrt-s", "0.8", "--observable", "thrust"), ("--sqrt-s=0.8", "[10, 340]")),
        (("--histogram", THRUST, "--sqrt-s", "1000", "--observable", "thrust"), ("--sqrt-s=1000",)),
        (("--histogram", THRUST, "--observable", "thrust"), ("--sqrt-s is required",)),
        (("--histogram", THRUST, "--sqrt-s", "91.2"), ("give --observable",)),
        (("--histogram", THRUST, "--sqrt-s", "91.2", "--observable", "thrust", "--x-variable", "C"), ("--x-variable 'C'",)),
        (("--histogram", THRUST, "--sqrt-s", "91.2", "--observable", "c", "--observable", "y23"), ("one observable",)),
        (("--histogram", THRUST, "--sqrt-s", "91.2", "--observable", "thrust", "--had-events", "10"), ("--had-events",)),
    ],
)
def test_cli_bad_yoda_arguments_exit_2_one_line(args, words, tmp_path, capsys):
    data = tmp_path / "aleph.yoda"
    write_yoda(data, list(aleph_event_shapes().values()))
    code, io = _run(capsys, "--data", str(data), *args, "--out", str(tmp_path / "out"), "--had-cache", str(tmp_path))
    assert code == 2
    lines = io.err.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), io.err


@pytest.mark.parametrize(
    "args, word",
    [
        (("--data", "missing.yoda", "--sqrt-s", "91.2"), "no such file"),
        (("--histogram", THRUST), "--histogram can only be used with a .yoda --data file"),
        (("--data", "aleph-91", "--sqrt-s", "91.2"), "--sqrt-s can only be used"),
    ],
)
def test_cli_yoda_options_need_a_yoda_file(args, word, tmp_path, capsys):
    code, io = _run(capsys, *args, "--out", str(tmp_path / "out"))
    assert code == 2 and io.err.count("\n") == 1 and word in io.err, io.err
