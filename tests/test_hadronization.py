"""The shipped hadronisation-correction table (diffhep/fit/data/hadronization_91GeV.json,
made by scripts/make_hadronization_corrections.py with Pythia 8.317, 2e5 events per
setting).

The physics checks assert what the committed table shows (numbers in the comments
are the default setting's), with margins of many MC standard deviations.
"""

import numpy as np
import pytest

from diffhep.fit._hadronization import (
    OBSERVABLES,
    correction_settings,
    load_corrections,
    load_table,
    moderate_bins,
    moderate_range,
)
from diffhep.io import aleph_event_shapes

SETTINGS = ("default", "sigma_pt_down", "sigma_pt_up")


def test_table_metadata():
    table = load_table()
    assert correction_settings() == SETTINGS
    meta = table["metadata"]
    assert meta["generator"].startswith("Pythia 8.317") and meta["sqrt_s_GeV"] == 91.2
    for s in SETTINGS:
        entry = table["settings"][s]
        assert entry["n_events"] == 200_000 and entry["n_failed"] == 0
        # Pythia's thrust and fastjet's y23 agreed with diffhep.observables while generating.
        for check in entry["diffhep_cross_check"].values():
            assert check["n_events"] == 500 and check["max_abs_dT"] < 1e-12 and check["max_rel_dy23"] < 1e-10
    assert table["settings"]["sigma_pt_up"]["pythia_settings"] == ["StringPT:sigma = 0.37"]
    assert table["settings"]["sigma_pt_down"]["pythia_settings"] == ["StringPT:sigma = 0.30"]


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("observable", OBSERVABLES)
def test_bins_factors_and_errors(observable, setting):
    edges, factor, err = load_corrections(observable, setting)
    np.testing.assert_array_equal(edges, aleph_event_shapes()[observable].edges)  # exactly the ALEPH bins
    assert factor.shape == err.shape == (edges.size - 1,)
    assert not factor.flags.writeable
    ok = np.isfinite(factor)
    np.testing.assert_array_equal(ok, np.isfinite(err))
    assert np.all(factor[ok] > 0) and np.all(err[ok] > 0)
    if observable == "y23":
        # Only the last bins, −ln y23 > 10 (y23 < 5e-5), have no hadron-level events.
        assert np.all(ok[edges[:-1] < 10.0]) and not np.all(ok)
    else:
        assert np.all(ok)
    # Delta-method errors agree with the Poisson bootstrap where the counts are large.
    corr = load_table()["settings"][setting]["corrections"][observable]
    big = np.minimum(corr["n_parton"], corr["n_hadron"]) >= 1000
    boot = np.array(corr["bootstrap_err"], float)[big]
    assert big.sum() >= 20
    np.testing.assert_allclose(err[big], boot, rtol=0.35)


def test_two_jet_region_and_means():
    """Hadronisation moves events away from the two-jet limit."""
    _, t, t_err = load_corrections("thrust")
    assert t[-1] < 0.2 and t[-2] < 0.85  # T in [0.99, 1.00]: 0.142 ± 0.003; [0.98, 0.99]: 0.765 ± 0.005
    assert np.all(t[-6:-2] > 1.1)  # T in [0.94, 0.98]: 1.16-1.30, errors ~0.01
    assert np.all(np.abs(t[15:35] - 1) < 0.12)  # T in [0.73, 0.93]: ~1 (0.97-1.08)
    _, c, _ = load_corrections("c_parameter")
    assert c[0] < 0.05 and c[1] < 0.2  # C < 0.04: 0.014, 0.093
    assert np.all(c[5:9] > 1.2)  # C in [0.10, 0.18]: 1.26-1.32
    _, y, _ = load_corrections("y23")
    assert np.all(y[36:45] < 0.5)  # −ln y23 in [8.2, 10.0]: < 0.35
    assert np.all(y[23:28] > 1.2)  # −ln y23 in [5.6, 6.6]: 1.30-1.40
    # <1 − T> rises by hadronisation (PHYSICS.md: 0.0635 → 0.0681 at 91.1876 GeV), and
    # the shift grows with the string pT width.
    shift = {}
    for s in SETTINGS:
        summary = load_table()["settings"][s]["summary"]
        parton, hadron = summary["parton"]["mean_1_minus_T"], summary["hadron"]["mean_1_minus_T"]
        assert 0.061 < parton < 0.065 and 0.066 < hadron < 0.070
        shift[s] = hadron - parton
        assert 11.0 < summary["parton"]["mean_multiplicity"] < 11.5
    assert 0.003 < shift["sigma_pt_down"] < shift["default"] < shift["sigma_pt_up"] < 0.006


def test_moderate_range():
    assert moderate_range("thrust") == (0.73, 0.96)
    assert moderate_range("c_parameter") == (0.2, 0.82)
    assert moderate_range("y23") == (1.2, 5.6)
    mask = moderate_bins("thrust", settings=("default",), max_rel_err=1.0)
    edges, factor, _ = load_corrections("thrust")
    np.testing.assert_array_equal(mask, (factor >= 0.8) & (factor <= 1.25))


def test_bad_arguments():
    with pytest.raises(ValueError, match="observable 'one_minus_thrust' unknown"):
        load_corrections("one_minus_thrust")
    with pytest.raises(ValueError, match="setting 'herwig' unknown"):
        load_corrections("thrust", "herwig")
    with pytest.raises(ValueError, match="0 < low <= 1 <= high"):
        moderate_bins("thrust", low=1.1)


def test_one_implementation_with_the_script():
    """The script that made the table calls the package's generator (also used for
    on-the-fly corrections at any √s), with the settings recorded in the table."""
    import importlib.util
    from pathlib import Path

    from diffhep.fit import _hadronization as had

    path = Path(__file__).resolve().parents[1] / "scripts" / "make_hadronization_corrections.py"
    spec = importlib.util.spec_from_file_location("make_hadronization_corrections", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.generate_event_shapes is had.generate_event_shapes
    assert script.correction_factors is had.correction_factors
    assert script.SETTINGS is had.HADRONIZATION_SETTINGS
    table = load_table()
    lines = had.pythia_settings(91.2, "default", table["settings"]["default"]["seed"])
    assert lines[:-1] == table["metadata"]["base_settings"]
    for s in SETTINGS:
        extra = had.pythia_settings(91.2, s, 1)[len(lines) - 1 : -1]
        assert extra == table["settings"][s]["pythia_settings"]
