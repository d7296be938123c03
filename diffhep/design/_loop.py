"""The optimisation loop (optax, box reparameterisation, orbax checkpoints), the
brute-force grid scan that validates it, and the gradient check."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

from ._objective import DesignProblem, draw_sample, objective_and_grad_u, objective_value


@dataclass
class DesignResult:
    """Outcome of `optimize`.

    **Fields:** `theta` the optimum of the free parameters (physical units; the mean of
    the last `average_last` iterates), `history_theta` `(steps+1, k)` (the start
    first), `history_objective` and `history_grad` `(steps, ...)` (the objective and
    dJ/dθ on each step's sample), `simulator_calls`, `wall_s`, `resumed_from` (step
    or None)."""

    free: tuple[str, ...]
    theta: np.ndarray
    history_theta: np.ndarray
    history_objective: np.ndarray
    history_grad: np.ndarray
    simulator_calls: int
    wall_s: float
    resumed_from: int | None


def _checkpointer(directory: Path, every: int):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=2, save_interval_steps=max(1, int(every)))
    return ocp, ocp.CheckpointManager(Path(directory).resolve(), options=options)


def optimize(
    problem: DesignProblem,
    *,
    seed: int = 0,
    steps: int = 15,
    learning_rate: float = 0.3,
    average_last: int = 5,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 5,
    resume: bool = False,
    progress: bool = True,
) -> DesignResult:
    """Minimise `problem`'s objective over its free parameters with Adam.

    The free parameters live in their box through θ = low + (high − low) σ(u); Adam
    moves u. Each step draws a fresh sample (shower + detector noise, key
    `fold_in(key(seed), step)`), and the objective and its gradient use that one
    sample (common random numbers within a step): one simulator call per step.

    With `checkpoint_dir`, the state (u, optimiser state, history) is saved with orbax
    every `checkpoint_every` steps; `resume=True` continues from the latest checkpoint
    there (the resumed run reproduces the uninterrupted one: the samples depend only
    on the step).
    """
    from tqdm.auto import tqdm

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume needs a checkpoint directory")
    k = len(problem.free)
    dtype = problem.base.b_field.dtype
    opt = optax.adam(learning_rate)
    u0 = jnp.asarray(problem.u_from_theta(problem.start()), dtype)
    state = {
        "step": jnp.asarray(0, jnp.int32),
        "u": u0,
        "opt": opt.init(u0),
        "theta": jnp.full((steps + 1, k), jnp.nan, dtype).at[0].set(problem.theta_from_u(u0)),
        "objective": jnp.full((steps,), jnp.nan, dtype),
        "grad": jnp.full((steps, k), jnp.nan, dtype),
    }
    ocp = mngr = None
    resumed_from = None
    if checkpoint_dir is not None:
        ocp, mngr = _checkpointer(checkpoint_dir, checkpoint_every)
        latest = mngr.latest_step()
        if resume and latest is not None:
            abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
            state = mngr.restore(latest, args=ocp.args.StandardRestore(abstract))
            resumed_from = int(latest)
        elif latest is not None and not resume:
            raise ValueError(f"{checkpoint_dir} holds checkpoints; pass resume (--resume) or use a new --out")
    key = jr.key(seed)
    start_step = int(state["step"])
    calls = 0
    t0 = time.perf_counter()
    bar = tqdm(total=steps, initial=start_step, desc="optimize-detector", disable=not progress, leave=False)
    u, opt_state = state["u"], state["opt"]
    for step in range(start_step, steps):
        sample = draw_sample(jr.fold_in(key, step), problem)
        value, g_u = objective_and_grad_u(u, sample, problem)
        calls += 1
        theta = problem.theta_from_u(u)
        # dJ/dθ = dJ/du / (dθ/du) for the record (θ = lo + (hi − lo) σ(u)).
        lo, hi = problem.bounds()
        s = jax.nn.sigmoid(u)
        g_theta = g_u / (jnp.asarray(hi - lo) * s * (1 - s))
        updates, opt_state = opt.update(g_u, opt_state, u)
        u = optax.apply_updates(u, updates)
        state = {
            "step": jnp.asarray(step + 1, jnp.int32),
            "u": u,
            "opt": opt_state,
            "theta": state["theta"].at[step + 1].set(problem.theta_from_u(u)),
            "objective": state["objective"].at[step].set(value),
            "grad": state["grad"].at[step].set(g_theta),
        }
        if mngr is not None:
            mngr.save(step + 1, args=ocp.args.StandardSave(state))
        bar.set_postfix(J=f"{float(value):.4g}", **{n: f"{float(t):.4g}" for n, t in zip(problem.free, theta)})
        bar.update(1)
    bar.close()
    if mngr is not None:
        mngr.wait_until_finished()
        mngr.close()
    hist = np.asarray(state["theta"])
    tail = hist[max(1, steps + 1 - int(average_last)) :]
    return DesignResult(
        free=problem.free,
        theta=tail.mean(axis=0),
        history_theta=hist,
        history_objective=np.asarray(state["objective"]),
        history_grad=np.asarray(state["grad"]),
        simulator_calls=calls,
        wall_s=time.perf_counter() - t0,
        resumed_from=resumed_from,
    )


def grid_scan(
    problem: DesignProblem,
    theta: np.ndarray,
    *,
    n_grid: int = 12,
    seed: int = 10_000,
    pair: tuple[int, int] = (0, 1),
    progress: bool = True,
) -> dict:
    """Brute-force scan of the objective over two free parameters (indices `pair`), the
    others held at `theta`, on one fixed sample (key(seed)): `n_grid` points per axis,
    evenly spaced over the box. One simulator call per point.

    **Returns:** dict with `axes` (two `(n_grid,)` arrays), `values` `(n_grid, n_grid)`
    (first index: the first parameter), `optimum` (θ with the grid's best pair),
    `objective` (its value), `step` (the grid spacing of each axis),
    `simulator_calls`, `sample_seed`.
    """
    from tqdm.auto import tqdm

    if n_grid < 2:
        raise ValueError(f"n_grid must be >= 2, got {n_grid}")
    lo, hi = problem.bounds()
    i, j = pair
    axes = [np.linspace(lo[i], hi[i], n_grid), np.linspace(lo[j], hi[j], n_grid)]
    sample = draw_sample(jr.key(seed), problem)
    values = np.empty((n_grid, n_grid))
    base = np.asarray(theta, float).copy()
    with tqdm(total=n_grid * n_grid, desc="grid", disable=not progress, leave=False) as bar:
        for a, x in enumerate(axes[0]):
            for b, y in enumerate(axes[1]):
                t = base.copy()
                t[i], t[j] = x, y
                values[a, b] = float(objective_value(jnp.asarray(t), sample, problem))
                bar.update(1)
    a, b = np.unravel_index(np.argmin(values), values.shape)
    best = base.copy()
    best[i], best[j] = axes[0][a], axes[1][b]
    return dict(
        axes=axes,
        values=values,
        optimum=best,
        objective=float(values[a, b]),
        step=np.array([axes[0][1] - axes[0][0], axes[1][1] - axes[1][0]]),
        simulator_calls=n_grid * n_grid,
        sample_seed=seed,
        sample=sample,
    )


def gradient_check(problem: DesignProblem, *, seed: int = 0, rel_step: float = 1e-4) -> dict:
    """dJ/du by AD against central finite differences at the start point, on the first
    step's sample (key `fold_in(key(seed), 0)`, as `optimize` uses).

    **Returns:** dict with `ad`, `fd` `(k,)` and `max_rel_err`."""
    sample = draw_sample(jr.fold_in(jr.key(seed), 0), problem)
    u0 = jnp.asarray(problem.u_from_theta(problem.start()), problem.base.b_field.dtype)
    _, ad = objective_and_grad_u(u0, sample, problem)
    fd = []
    for i in range(len(problem.free)):
        h = rel_step * max(1.0, abs(float(u0[i])))
        e = jnp.zeros_like(u0).at[i].set(h)
        jp = objective_value(problem.theta_from_u(u0 + e), sample, problem)
        jm = objective_value(problem.theta_from_u(u0 - e), sample, problem)
        fd.append(float(jp - jm) / (2 * h))
    ad = np.asarray(ad)
    fd = np.asarray(fd)
    rel = np.abs(ad - fd) / np.maximum(np.abs(fd), 1e-12)
    return dict(ad=ad, fd=fd, max_rel_err=float(rel.max()))


def evaluate(problem: DesignProblem, theta: np.ndarray, sample) -> float:
    """The objective at `theta` (physical units) on a given sample."""
    return float(objective_value(jnp.asarray(theta), sample, problem))
