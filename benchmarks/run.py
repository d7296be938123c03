"""Run diffhep benchmarks and summarise their results.

    python benchmarks/run.py thrust      # -> benchmarks/results/thrust-<platform>.json
    python benchmarks/run.py all         # every benchmark
    python benchmarks/run.py table       # markdown table of all results
    python benchmarks/run.py shower-table  # the shower's table by mode, precision, threads, size
    python benchmarks/run.py --list      # names

Each benchmark is a module `bench_NAME.py` here with `run() -> dict`; the harness
adds the environment (device, versions, CPU) and writes the JSON atomically.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import RESULTS, load_results, markdown_table, shower_table, write_result  # noqa: E402

BENCHMARKS = {
    "thrust": "bench_thrust",
    "shower": "bench_shower",
    "me": "bench_me",
    "detector": "bench_detector",
    "mtop": "bench_mtop",
    "jumps": "bench_jumps",
}


def run_one(name: str) -> Path:
    module = importlib.import_module(BENCHMARKS[name])
    result = module.run()
    path = write_result(name, result)
    s = result["summary"]
    print(
        f"{name}: diffhep {s['diffhep_events_per_s']:.4g} events/s "
        f"(compile ≈ {s['diffhep_compile_s']:.2f} s), "
        f"{s['peer']} {s['peer_events_per_s']} events/s, ratio {s['ratio']} -> {path}"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "name", nargs="?", choices=[*BENCHMARKS, "all", "table", "shower-table"], help="benchmark to run"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    if args.name is None:
        parser.error("give a benchmark name, 'all' or 'table'")
    if args.name == "table":
        print(markdown_table(load_results()))
        return 0
    if args.name == "shower-table":
        for path in sorted(RESULTS.glob("shower-*.json")):
            print(f"{path.name}:\n\n{shower_table(json.loads(path.read_text()))}\n")
        return 0
    for name in BENCHMARKS if args.name == "all" else [args.name]:
        run_one(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
