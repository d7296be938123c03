"""The design loop: bad input, the box map, gradient vs finite differences,
checkpoint/resume, the CLI, and (slow) the grid validation."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffhep import design, detector
from diffhep.cli import main


FREE = ("eta_max", "calo_depth", "cell_size", "b_field")


def _problem(**kw):
    kw.setdefault("objective", "jer")
    kw.setdefault("n_events", 24)
    return design.DesignProblem(**kw)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(cost_weight=-1.0), r"cost_weight=-1.0 is outside the allowed range \[0, inf\)"),
        (dict(free=("depth",)), "unknown design parameter 'depth'"),
        (dict(objective="mass"), "objective='mass' is not one of alphas, jer"),
        (dict(box={**detector.BOX, "calo_depth": (-1.0, 10.0)}), r"calo_depth=-1.0 X0 is outside the allowed range"),
        (dict(box={**detector.BOX, "cell_size": (0.01, 6.0)}, free=("cell_size",)), "cell_size=6.0 is larger than the acceptance"),
    ],
)
def test_bad_problem(kw, match):
    with pytest.raises(ValueError, match=match):
        _problem(**kw)


def test_cli_bad_input(capsys, tmp_path):
    for args, match in (
        (["--cost-weight", "-0.5"], "cost weight -0.5 is outside the allowed range [0, inf)"),
        (["--set", "calo_depth=-2"], "calo_depth=-2.0 X0 is outside the allowed range (0, inf)"),
        (["--set", "b_field=0"], "b_field=0.0 T is outside the allowed range (0, inf)"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(["optimize-detector", "--out", str(tmp_path / "x"), "--quiet", *args])
        assert exc.value.code == 2
        assert match in capsys.readouterr().err


def test_box_map():
    pr = _problem()
    lo, hi = pr.bounds()
    u = jnp.array([-30.0, 30.0])
    th = np.asarray(pr.theta_from_u(u))
    assert np.all(th >= lo) and np.all(th <= hi)
    np.testing.assert_allclose(pr.theta_from_u(jnp.asarray(pr.u_from_theta(pr.start()))), pr.start(), rtol=1e-12)
    p = pr.to_params(jnp.asarray(pr.start()))
    assert float(p.calo_depth) == float(pr.base.calo_depth)


@pytest.mark.parametrize("objective", [pytest.param("jer", marks=pytest.mark.slow), "alphas"])
def test_gradient_matches_finite_differences(objective):
    pr = _problem(objective=objective, free=FREE)
    check = design.gradient_check(pr, seed=3, rel_step=1e-5)
    assert check["max_rel_err"] < 1e-5, check


def test_checkpoint_resume(tmp_path):
    # the problem of the gradient test: the compiled objective is reused
    pr = _problem(objective="alphas", free=FREE)
    full = design.optimize(pr, seed=1, steps=4, checkpoint_dir=tmp_path / "a", checkpoint_every=2, progress=False)
    assert full.simulator_calls == 4
    # interrupt after step 2: drop the last checkpoint, then resume
    part = design.optimize(pr, seed=1, steps=4, checkpoint_dir=tmp_path / "b", checkpoint_every=2, progress=False)
    import shutil

    shutil.rmtree(tmp_path / "b" / "4")
    resumed = design.optimize(pr, seed=1, steps=4, checkpoint_dir=tmp_path / "b", checkpoint_every=2, resume=True, progress=False)
    assert resumed.resumed_from == 2 and resumed.simulator_calls == 2
    np.testing.assert_allclose(resumed.history_theta, full.history_theta, rtol=1e-10)
    np.testing.assert_allclose(resumed.history_objective, full.history_objective, rtol=1e-10)
    del part
    with pytest.raises(ValueError, match="holds checkpoints"):
        design.optimize(pr, seed=1, steps=4, checkpoint_dir=tmp_path / "a", progress=False)


def test_cli_run(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["optimize-detector", "--out", str(out), "--events", "24", "--steps", "3", "--grid", "3", "--quiet",
              "--checkpoint-every", "1", *[a for n in FREE for a in ("--free", n)]])
    assert exc.value.code == 0
    res = json.loads((out / "result.json").read_text())
    for k in ("objective", "params", "grid_optimum", "grid_objective", "simulator_calls", "grid_simulator_calls", "wall_s", "device"):
        assert k in res
    assert res["simulator_calls"] == 3 and res["grid_simulator_calls"] == 9
    for name in ("objective.png", *(f"param_{n}.png" for n in FREE), "landscape.png"):
        assert (out / name).stat().st_size > 0
    args = ["optimize-detector", "--out", str(out), "--events", "24", "--steps", "3", "--grid", "0", "--quiet",
            *[a for n in FREE for a in ("--free", n)]]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and "pass --resume" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*args, "--resume"])
    assert exc.value.code == 0
    again = json.loads((out / "result.json").read_text())
    assert again["resumed_from"] == 3 and again["simulator_calls"] == 0
    assert again["history"] == res["history"]


def test_alphas_objective_counts_acceptance():
    # The physics of the alphas objective, on the gradient test's problem (compiled
    # already): the expected number of selected events scales with the acceptance, so
    # a small eta_max must give a worse sigma(alpha_s) on a common sample.
    pr = _problem(objective="alphas", free=FREE)
    sample = design.draw_sample(jax.random.fold_in(jax.random.key(3), 0), pr)

    def physics(eta_max):
        theta = np.array([eta_max, 24.0, 0.02, 3.5])
        return design.evaluate(pr, theta, sample) - pr.cost_weight * float(detector.cost(pr.to_params(jnp.asarray(theta))))

    full, small = physics(2.4), physics(0.5)
    assert np.isfinite(full) and small > 1.3 * full, (full, small)


@pytest.mark.slow
@pytest.mark.parametrize(
    "objective,kw",
    [
        ("jer", dict(cost_weight=15.0, learning_rate=0.3)),
        # default cost weight 0.05 and eta_slope 0.25 (design._cli.RELAXATION)
        ("alphas", dict(learning_rate=0.5)),
    ],
)
def test_grid_validation(tmp_path, objective, kw):
    # Grid and gradient optimum compared on one common evaluation sample of 4x the
    # events of an optimiser step.
    payload = design.run_optimize_detector(
        out=tmp_path, objective=objective, events=1000, steps=15, grid=13, seed=0, progress=False, **kw
    )
    assert abs(payload["objective_rel_diff"]) < 0.02, payload
    assert payload["params_within_one_grid_step"], payload
    assert payload["grid_simulator_calls"] >= 10 * payload["simulator_calls"]
    assert payload["gradient_check"]["max_rel_err"] < 1e-5
