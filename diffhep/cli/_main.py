"""The `diffhep` command line (typer).

Every workflow is a subcommand. Bad arguments print one line and exit with code 2
(typer/click usage errors, and `BadArgument` raised by our own validation).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    name="diffhep",
    help="Differentiable high-energy physics in JAX.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    cpu_devices: int = typer.Option(
        0, "--cpu-devices", help="CPU devices to split event batches over (0: one per usable core; 1: no split)."
    ),
) -> None:
    """Differentiable high-energy physics in JAX. One subcommand per workflow."""
    from .._devices import cpu_devices_flag

    if cpu_devices < 0:
        fail(f"--cpu-devices must be >= 0, got {cpu_devices}")
    # Before any command starts JAX's backends; an XLA_FLAGS that sets the count wins.
    cpu_devices_flag(None if cpu_devices == 0 else cpu_devices)


X64 = typer.Option(
    True, "--x64/--no-x64", help="Run in float64 (default; float32 showers can fail on boosts of near-collinear dipoles)."
)


def use_float64(on: bool = True) -> None:
    """Switch JAX to float64 for this process: a command's choice (importing diffhep
    never changes JAX's configuration)."""
    if on:
        import jax

        jax.config.update("jax_enable_x64", True)


def fail(message: str) -> None:
    """Print a one-line error and exit with status 2 (bad argument)."""
    typer.echo(f"diffhep: error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def info() -> None:
    """Print diffhep, jax and jaxlib versions, the backend, devices and float64 state."""
    import jax
    import jaxlib

    from .. import __version__

    typer.echo(f"diffhep  {__version__}")
    typer.echo(f"jax      {jax.__version__}")
    typer.echo(f"jaxlib   {jaxlib.__version__}")
    typer.echo(f"python   {sys.version.split()[0]}")
    typer.echo(f"backend  {jax.default_backend()}")
    for d in jax.devices():
        typer.echo(f"device   {d.id}: {d.platform} {d.device_kind}")
    typer.echo(f"float64  {'on' if jax.config.jax_enable_x64 else 'off'}")


@app.command("fit-alphas")
def fit_alphas_cmd(
    out: Path = typer.Option(Path("runs/fit-alphas"), "--out", help="Output directory."),
    truth_alpha_s: float = typer.Option(0.118, "--truth-alpha-s", help="alpha_s(MZ) of the pseudo-data."),
    events: int = typer.Option(100_000, "--events", help="Pseudo-data events."),
    mc_events: Optional[int] = typer.Option(None, "--mc-events", help="Shower events in the template (default: --events)."),
    seed: int = typer.Option(1, "--seed", help="Random seed."),
    observable: Optional[list[str]] = typer.Option(
        None, "--observable", help="thrust, c or y23; repeat for several (default thrust; a .yoda table takes one)."
    ),
    max_steps: int = typer.Option(12, "--max-steps", help="Optimiser steps at most."),
    scan: bool = typer.Option(True, "--scan/--no-scan", help="Likelihood scan around the minimum."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    data: Optional[str] = typer.Option(
        None, "--data",
        help="Real data: aleph-thrust-91, aleph-c-91, aleph-y23-91, aleph-91 (all three), or a .yoda file; "
        "or parton-level events at 91.1876 GeV in a .npz file (diffhep shower --out).",
    ),
    histogram: Optional[str] = typer.Option(None, "--histogram", help="YODA path of the table in a .yoda --data file."),
    sqrt_s: Optional[float] = typer.Option(None, "--sqrt-s", help="Centre-of-mass energy (GeV) of a .yoda --data table."),
    x_variable: Optional[str] = typer.Option(
        None, "--x-variable", help="x of a .yoda table: T, 1-T, C, -ln y23, y23 or ln y23 (default: from the bin range)."
    ),
    had_events: int = typer.Option(100_000, "--had-events", help="Pythia 8 events per hadronisation setting (.yoda data)."),
    had_cache: Optional[Path] = typer.Option(
        None, "--had-cache", help="Cache folder of the hadronisation corrections (default ~/.cache/diffhep/hadronization)."
    ),
    had_max_rel_err: float = typer.Option(
        0.05, "--had-max-rel-err", help="Largest MC error of a correction inside the fit range (.yoda data)."
    ),
    pythia: bool = typer.Option(False, "--pythia", help="Pseudo-data from Pythia 8 parton level instead."),
    jumps: bool = typer.Option(
        False, "--jumps", help="Derivatives with the surface term of k_T-order swaps (shower jump partners): "
        "unbiased Fisher error (about 3 % larger for thrust), about 2x the time per step."
    ),
    x64: bool = X64,
) -> None:
    """Fit alpha_s(MZ) to event shapes by gradient descent through the shower."""
    use_float64(x64)
    from ..fit._cli import run_fit_alphas, run_fit_alphas_data, run_fit_alphas_yoda, summary

    yoda_only = {"--histogram": histogram, "--sqrt-s": sqrt_s, "--x-variable": x_variable, "--had-cache": had_cache}
    if data is not None and pythia:
        raise ValueError("--data and --pythia exclude each other")
    if data is not None and data.lower().endswith(".yoda"):
        if observable is not None and len(observable) > 1:
            raise ValueError(f"--observable is given {len(observable)} times; a .yoda --histogram is one observable")
        payload = run_fit_alphas_yoda(
            out=out, data=data, histogram=histogram, sqrt_s=sqrt_s, observable=observable[0] if observable else None,
            x_variable=x_variable, mc_events=mc_events or events, seed=seed, max_steps=max_steps, scan=scan,
            had_events=had_events, had_cache=had_cache, had_max_rel_err=had_max_rel_err, progress=not quiet,
            jumps=jumps,
        )
        typer.echo(
            f"{payload['observables'][0]:7s} alpha_s = {payload['alpha_s']:.4f} ± {payload['alpha_s_err']:.4f} "
            f"(exp+corr MC) ± {payload['alpha_s_err_mc']:.4f} (shower MC) ± "
            f"{payload['alpha_s_err_hadronization']:.4f} (had.)  chi2/ndf = {payload['chi2_ndf']:.2f}  "
            f"range {payload['fit_variable']} in {payload['fit_range']} at {payload['sqrt_s']:g} GeV"
        )
    elif data is not None and data.lower().endswith(".npz"):
        if not Path(data).is_file():
            raise ValueError(f"--data {data}: no such file")
        payload = run_fit_alphas(
            out=out, truth_alpha_s=truth_alpha_s, events=events, mc_events=mc_events, seed=seed,
            observables=observable or ["thrust"], max_steps=max_steps, scan=scan, progress=not quiet,
            jumps=jumps, events_file=data,
        )
    elif any(v is not None for v in yoda_only.values()):
        given = [k for k, v in yoda_only.items() if v is not None]
        raise ValueError(f"{', '.join(given)} can only be used with a .yoda --data file")
    elif data is not None:
        given = observable
        payload = run_fit_alphas_data(
            out=out, data=data, observables=given, mc_events=mc_events or events, seed=seed,
            max_steps=max_steps, scan=scan, progress=not quiet, jumps=jumps,
        )
        for name, r in payload.get("per_observable", {}).items():
            typer.echo(
                f"{name:7s} alpha_s = {r['alpha_s']:.4f} ± {r['alpha_s_err']:.4f} (exp+corr MC) "
                f"± {r['alpha_s_err_mc']:.4f} (shower MC) ± {r['alpha_s_err_hadronization']:.4f} (had.)  "
                f"chi2/ndf = {r['chi2_ndf']:.2f}  range {r['fit_variable']} in {r['fit_range']}"
            )
    else:
        payload = run_fit_alphas(
            out=out, truth_alpha_s=truth_alpha_s, events=events, mc_events=mc_events, seed=seed,
            observables=observable or ["thrust"], max_steps=max_steps, scan=scan, progress=not quiet, pythia=pythia,
            jumps=jumps,
        )
    typer.echo(summary(payload))
    typer.echo(f"wrote {out / 'result.json'} and plots")


@app.command("shower")
def shower_cmd(
    out: Path = typer.Option(..., "--out", help="Events file to write (.npz; diffhep.io.load_events reads it)."),
    events: int = typer.Option(100_000, "--events", help="Events to shower (>= 1)."),
    alpha_s: float = typer.Option(0.118, "--alpha-s", help="alpha_s(MZ)."),
    kt_min: float = typer.Option(0.5, "--kt-min", help="Shower cutoff in GeV."),
    seed: int = typer.Option(1, "--seed", help="Random seed."),
    x64: bool = X64,
) -> None:
    """Shower e+e- -> q qbar events at 91.1876 GeV (parton level, weighted) into a .npz file."""
    if events < 1:
        raise ValueError(f"--events must be >= 1, got {events}")
    if out.suffix != ".npz":
        raise ValueError(f"--out must name a .npz file, got {str(out)!r}")
    use_float64(x64)
    from ..shower._cli import run_shower

    typer.echo(run_shower(out=out, events=events, alpha_s=alpha_s, kt_min=kt_min, seed=seed))


@app.command("optimize-detector")
def optimize_detector_cmd(
    out: Path = typer.Option(Path("runs/optimize-detector"), "--out", help="Output directory."),
    objective: str = typer.Option("alphas", "--objective", help="alphas (sigma(alpha_s) from thrust) or jer (hemisphere energy resolution)."),
    free: list[str] = typer.Option(["eta_max", "calo_depth"], "--free", help="Design parameter to optimise; repeat. The grid scans the first two."),
    cost_weight: Optional[float] = typer.Option(None, "--cost-weight", help="Weight w >= 0 of the cost term (default per objective)."),
    events: int = typer.Option(1000, "--events", help="Showered events per simulator call."),
    steps: int = typer.Option(15, "--steps", help="Optimiser steps."),
    learning_rate: Optional[float] = typer.Option(
        None, "--learning-rate", help="Adam step size in the unconstrained box coordinates (default 0.5 for alphas, 0.3 for jer)."
    ),
    grid: int = typer.Option(13, "--grid", help="Grid points per axis of the validation scan (0: no scan)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    checkpoint_every: int = typer.Option(5, "--checkpoint-every", help="Save an orbax checkpoint every N steps."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint in --out."),
    start: list[str] = typer.Option([], "--set", help="Start/fixed value of a design parameter, NAME=VALUE; repeat."),
    x64: bool = X64,
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Optimise the toy detector's design by gradient descent through shower, detector and analysis."""
    use_float64(x64)
    from ..design._cli import run_optimize_detector, summary

    values = {}
    for item in start:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--set {name}: {value!r} is not a number") from None
    payload = run_optimize_detector(
        out=out, objective=objective, free=tuple(free), cost_weight=cost_weight, events=events, steps=steps,
        learning_rate=learning_rate, grid=grid, seed=seed, checkpoint_every=checkpoint_every, resume=resume,
        progress=not quiet, start=values,
    )
    typer.echo(summary(payload))
    typer.echo(f"wrote {out / 'result.json'} and plots")


@app.command("fit-mtop")
def fit_mtop_cmd(
    out: Path = typer.Option(Path("runs/fit-mtop"), "--out", help="Output directory."),
    truth_mt: float = typer.Option(172.5, "--truth-mt", help="Top mass of the pseudo-data in GeV, in [100, 250]."),
    events: int = typer.Option(300, "--events", help="Pseudo-data events (>= 1)."),
    seed: int = typer.Option(1, "--seed", help="Random seed."),
    # Literal defaults: this module must not import JAX before the device flag is set
    # (tests/test_mtop.py checks they equal `MtopConfig`'s).
    n_int: int = typer.Option(128, "--n-int", help="Integration points per event and jet assignment."),
    production: str = typer.Option("analytic", "--production", help="g g > t t~ |M|^2: analytic (Combridge) or helas."),
    start: float = typer.Option(170.0, "--start", help="Starting top mass in GeV."),
    max_steps: int = typer.Option(15, "--max-steps", help="Optimiser steps at most."),
    scan: bool = typer.Option(True, "--scan/--no-scan", help="Likelihood scan around the minimum."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    pythia: bool = typer.Option(
        False, "--pythia", help="Pseudo-data from Pythia 8 (parton level, gg -> ttbar) instead of the model."
    ),
) -> None:
    """Fit the top mass to t tbar -> 6-jet pseudo-data with a matrix-element-method likelihood."""
    use_float64()  # always: the likelihood integrates narrow Breit-Wigners
    from ..fit._mtop import run_fit_mtop, summary

    payload = run_fit_mtop(
        out=out, truth_mt=truth_mt, events=events, seed=seed, n_int=n_int, production=production,
        start=start, max_steps=max_steps, scan=scan, progress=not quiet, pythia=pythia,
    )
    typer.echo(summary(payload))
    typer.echo(f"wrote {out / 'result.json'} and plots")


def main(argv: list[str] | None = None) -> int:
    """Entry point. Usage errors and `ValueError` from validation print one line
    (no traceback) and give exit status 2."""
    try:  # typer >= 0.17 vendors click
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions as cx

    exits = tuple({typer.Exit, getattr(cx, "Exit", typer.Exit)})
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="diffhep")
    except exits as err:
        return sys.exit(err.exit_code)
    except typer.Abort:
        typer.echo("diffhep: aborted", err=True)
        return sys.exit(1)
    except cx.ClickException as err:
        if type(err).__name__ == "NoArgsIsHelpError" and err.ctx is not None:
            typer.echo(err.ctx.get_help())
            return sys.exit(0)
        typer.echo(f"diffhep: error: {err.format_message()}", err=True)
        return sys.exit(err.exit_code)
    except ValueError as err:
        typer.echo(f"diffhep: error: {err}", err=True)
        return sys.exit(2)
    return sys.exit(rv if isinstance(rv, int) else 0)
