"""Shared benchmark harness: timing, environment record, atomic JSON output.

Timing rules (house style): the first call of a jitted function is reported as
compile + run, separately from the steady state, which is the median of several
further calls; every call ends with `block_until_ready`. Each result records the
device, the versions, the settings and the machine, so that numbers from different
machines are never compared unknowingly.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from diffhep.fit import write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def time_jax(fn: Callable[..., Any], *args: Any, repeats: int = 5) -> dict[str, Any]:
    """Time a jitted `fn(*args)`: the first call (compile + run), then `repeats`
    further calls. Returns seconds and the last output."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - start)
    return {
        "first_call_s": first,
        "steady_s": statistics.median(runs),
        "runs_s": runs,
        "output": out,
    }


@contextlib.contextmanager
def work_sizes_changed(**changes: object):
    """Inside the block, the default backend's `diffhep._devices.WorkSizes` with
    `changes` applied (a tuning diagnostic: the sizes are module constants, read at
    trace time). Caches are cleared on entry and exit so that jitted code is traced
    again with the sizes in force."""
    from diffhep import _devices

    name = "_CPU_SIZES" if jax.default_backend() == "cpu" else "_ACCELERATOR_SIZES"
    base = getattr(_devices, name)
    setattr(_devices, name, base._replace(**changes))
    jax.clear_caches()
    try:
        yield getattr(_devices, name)
    finally:
        setattr(_devices, name, base)
        jax.clear_caches()


def parse_sizes(text: str) -> dict[str, int]:
    """`"me_lanes=2**26,me_max_chunk=1048576"` -> `{"me_lanes": 67108864, ...}`;
    `"default"` -> `{}`."""
    if text == "default":
        return {}
    out = {}
    for item in text.split(","):
        field, _, value = item.partition("=")
        base, _, exp = value.partition("**")
        out[field.strip()] = int(base) ** int(exp) if exp else int(value)
    return out


# Trace entries that are not kernels: Python frames, the executable, the thunk executor
# and the CPU's loop bodies (their kernels are listed on their own).
_NOT_KERNELS = ("$", "PjitFunction", "ThunkExecutor", "CommonPjRtLoadedExecutable", "while")


def trace_top(folder: Path, top: int = 40) -> list:
    """The `top` kernels of the newest `jax.profiler` trace under `folder` by total time,
    `[ms, calls, name]`: a GPU's device ops, or on a CPU (no device track) the XLA
    kernels (fusions) its thunks ran. Prefers the Perfetto file where there is one."""
    import collections
    import gzip

    files = sorted(folder.rglob("perfetto_trace.json.gz")) or sorted(folder.rglob("*.trace.json.gz"))
    trace = json.load(gzip.open(files[-1]))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {e["pid"]: str(e["args"].get("name")) for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
    device = {pid for pid, name in names.items() if "device" in name.lower() or "gpu" in name.lower()} or set(names)
    total, calls = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e["pid"] in device and not e["name"].startswith(_NOT_KERNELS):
            total[e["name"]] += e.get("dur", 0)
            calls[e["name"]] += 1
    return [[round(t / 1e3, 3), calls[k], k[:120]] for k, t in total.most_common(top)]


def trace_summary(folder: Path) -> dict:
    """Of the newest trace under `folder`: the device's busy time (sum of its kernels'
    and copies' durations), the span from its first op's start to its last op's end
    (the difference is time the device waited: launches, host syncs), the number of
    ops, and the copies' share (`Memcpy*`), all in ms."""
    import gzip

    files = sorted(folder.rglob("perfetto_trace.json.gz")) or sorted(folder.rglob("*.trace.json.gz"))
    trace = json.load(gzip.open(files[-1]))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {e["pid"]: str(e["args"].get("name")) for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
    device = {pid for pid, name in names.items() if "device" in name.lower() or "gpu" in name.lower()} or set(names)
    ops = [e for e in events if e.get("ph") == "X" and e["pid"] in device and not e["name"].startswith(_NOT_KERNELS)]
    if not ops:
        return {}
    start = min(e["ts"] for e in ops)
    end = max(e["ts"] + e.get("dur", 0) for e in ops)
    copies = [e for e in ops if "memcpy" in e["name"].lower()]
    return {
        "busy_ms": round(sum(e.get("dur", 0) for e in ops) / 1e3, 3),
        "span_ms": round((end - start) / 1e3, 3),
        "ops": len(ops),
        "copy_ms": round(sum(e.get("dur", 0) for e in copies) / 1e3, 3),
        "copies": len(copies),
    }


def time_python(fn: Callable[[], Any], repeats: int = 3) -> dict[str, Any]:
    """Time a plain Python/C++ call `fn()` (no compilation): median of `repeats`."""
    runs, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - start)
    return {"steady_s": statistics.median(runs), "runs_s": runs, "output": out}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Device, versions and machine of this run."""
    device = jax.devices()[0]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "n_devices": jax.device_count(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        # Other work on the machine slows everything down: keep the load with the result.
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "versions": {
            "python": platform.python_version(),
            "jax": _version("jax"),
            "jaxlib": _version("jaxlib"),
            "diffhep": _version("diffhep"),
            "numpy": _version("numpy"),
            "pythia8mc": _version("pythia8mc"),
            "fastjet": _version("fastjet"),
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write `result` plus the environment to `results/NAME-<platform>.json`,
    atomically (temporary file in the same folder, then `os.replace`)."""
    env = environment()
    payload = {"benchmark": name, "environment": env, **result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{env['platform']}.json"
    write_json_atomic(path, payload)  # the project's one atomic writer
    return path


def load_results() -> list[dict[str, Any]]:
    """All result files, sorted by benchmark name and platform (not the profiles of
    `profile_shower.py`, which have no "benchmark" entry)."""
    out = []
    for path in sorted(RESULTS.glob("*.json")):
        with open(path) as f:
            result = json.load(f)
        if "benchmark" in result:
            out.append(result)
    return out


def markdown_table(results: list[dict[str, Any]]) -> str:
    """One row per result: our throughput, the peer's, and the ratio."""
    rows = [
        "| benchmark | what (the headline row) | device | diffhep [events/s] | compile ≈ first − steady [s] "
        "| peer | peer [events/s] | diffhep / peer | date |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        env, s = r["environment"], r["summary"]
        device = f"{env['platform']}: {env['device_kind']}"
        if env["platform"] == "cpu":
            device = f"cpu: {env['cpu_model']} ({env['cpu_count']} cores)"
        peer_rate = "–" if s["peer_events_per_s"] is None else f"{s['peer_events_per_s']:.3g}"
        ratio = "–" if s["ratio"] is None else f"{s['ratio']:.3g}"
        rows.append(
            f"| {r['benchmark']} | {s.get('diffhep_headline', '–')} | {device} | {s['diffhep_events_per_s']:.3g} "
            f"| {s['diffhep_compile_s']:.2f} | {s['peer']} | {peer_rate} | {ratio} | {env['date'][:10]} |"
        )
    return "\n".join(rows)


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(n: int) -> str:
    """2000000 → 2·10⁶, 10000 → 10⁴ (other numbers as they are)."""
    digits = str(int(n))
    lead, zeros = digits.rstrip("0"), len(digits) - len(digits.rstrip("0"))
    if len(lead) != 1 or zeros < 3:
        return digits
    power = f"10{str(zeros).translate(_SUPERSCRIPT)}"
    return power if lead == "1" else f"{lead}·{power}"


def shower_table(result: dict[str, Any]) -> str:
    """The shower benchmark's table by precision, thread setting and batch size:
    events/s per mode with the ratio to Pythia 8 on one core in brackets, and the
    first call (compile + run) of each mode."""
    modes = ["shower", "shower+thrust", "shower+thrust+jvp"]
    peer = result["pythia8"]
    peer_rate = {"shower": peer["next"]["events_per_s"]}
    peer_rate["shower+thrust"] = peer_rate["shower+thrust+jvp"] = peer["next+thrust"]["events_per_s"]
    cores = result["environment"].get("cpu_count")
    labels = {"all, 2 devices": "2 devices (shard_map)", "all": f"1 device, {cores} threads"}
    rows = [
        "| precision | devices / threads | n | shower | shower+thrust | shower+thrust+d/dα_s | first call [s] |",
        "|---|---|---|---|---|---|---|",
    ]
    for worker in result["workers"]:
        threads = labels.get(worker["threads"], worker["threads"])
        if worker.get("platform", "cpu") != "cpu":
            threads = f"1 {worker.get('device_kind', worker['platform'])}"
        by_n: dict[int, dict[str, dict]] = {}
        for e in worker["entries"]:
            by_n.setdefault(e["n_events"], {})[e["mode"]] = e
        for n, entries in sorted(by_n.items()):
            rates, firsts = [], []
            for mode in modes:
                e = entries.get(mode, {})
                ok = "events_per_s" in e
                rates.append(f"{e['events_per_s']:.3g} ({e['events_per_s'] / peer_rate[mode]:.3g}×)" if ok else "–")
                firsts.append(f"{e['first_call_s']:.0f}" if ok else "–")
            rows.append(f"| {worker['dtype']} | {threads} | {_power_of_ten(n)} | {' | '.join(rates)} | {' / '.join(firsts)} |")
    return "\n".join(rows)
