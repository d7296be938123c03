"""Package-level contracts: public API, no config flips on import, CLI."""

import subprocess
import sys

import jax

import diffhep


def test_version():
    assert isinstance(diffhep.__version__, str) and diffhep.__version__.count(".") >= 2


def test_import_does_not_flip_jax_config():
    code = (
        "import jax; a = jax.config.jax_enable_x64; "
        "import diffhep, diffhep.kinematics, diffhep.observables, diffhep.cli; "
        "assert jax.config.jax_enable_x64 == a == False, jax.config.jax_enable_x64; "
        "assert jax.config.jax_numpy_rank_promotion == 'allow'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_needs_no_optional_heavy_dependencies():
    # pythia8mc, fastjet, awkward, vector, pylhe, pyhepmc must be imported lazily.
    code = (
        "import sys, diffhep, diffhep.kinematics, diffhep.observables, diffhep.cli\n"
        "bad = [m for m in ('pythia8mc', 'fastjet', 'awkward', 'vector', 'pylhe', 'pyhepmc') "
        "if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_py_typed_marker():
    from importlib.resources import files

    assert files("diffhep").joinpath("py.typed").is_file()


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "diffhep", *args], capture_output=True, text=True
    )


def test_cli_help_lists_subcommands():
    r = _cli("--help")
    assert r.returncode == 0, r.stderr
    assert "info" in r.stdout


def test_cli_info():
    r = _cli("info")
    assert r.returncode == 0, r.stderr
    for word in ("diffhep", "jax", "jaxlib", "backend", "device", "float64"):
        assert word in r.stdout
    assert jax.__version__ in r.stdout


def test_cli_bad_argument_is_one_line_exit_2():
    for args in (("no-such-command",), ("info", "--no-such-option")):
        r = _cli(*args)
        assert r.returncode == 2
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def _run_notebook(name: str) -> dict:
    """Execute a notebook's code cells in order in one namespace (matplotlib without display)."""
    import json
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    nb = json.loads((Path(__file__).parents[1] / "notebooks" / name).read_text())
    namespace: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), name, "exec"), namespace)
    return namespace


def test_quickstart_notebook_runs():
    namespace = _run_notebook("quickstart.ipynb")
    assert 0.04 < float(namespace["value"]) < 0.08
    assert float(namespace["slope"]) > 0


def test_matrix_elements_notebook_runs():
    import matplotlib.pyplot as plt
    import numpy as np

    ns = _run_notebook("matrix_elements.ipynb")
    plt.close("all")
    # d|M|^2/dm_t by AD against the notebook's central difference (h = 1e-4 GeV).
    assert float(np.max(np.abs(ns["slope"] - ns["fd"])) / np.max(np.abs(ns["fd"]))) < 1e-6
    # sigma_hat(gg -> tt) against the closed form: the top width in MadGraph's t-channel
    # propagators gives -1.6e-5; the midpoint rule (2000 points) leaves ~2e-7 without it.
    assert abs(ns["ours"] / ns["analytic"] - 1) < 5e-5
    assert abs(float(ns["sigma_hat"](172.5, 500.0, wt=0.0)) / ns["analytic"] - 1) < 1e-6
