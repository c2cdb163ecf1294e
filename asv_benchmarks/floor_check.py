"""The performance floor CI holds: fail when loopbp gets slower against NumPy.

Runs the ``floor`` benchmarks (``benchmarks/floor.py``: a few epochs and
feedforward passes, each beside the NumPy matrix form on the same work) in
one asv run with repeats, computes each ratio NumPy time / loopbp time, and
compares it with the floor committed in ``floors.json`` for this machine's
SIMD width.  Exits with status 1 when a ratio falls below its floor.

Ratios rather than times: CI runs on whatever machine it gets, and a ratio
to NumPy on the same machine moves much less with the machine than a time.
The floors sit well below the ratios measured (see ``floors.json``), so noise
on a shared 2-core machine does not fail CI, while loopbp running a kernel at
half its speed does.  Raise the floors as loopbp gets faster.

Usage, from anywhere in a git checkout with the ``bench`` extra installed::

    python asv_benchmarks/floor_check.py            # run the benchmarks, then check
    python asv_benchmarks/floor_check.py --no-run   # check the newest results only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ratios  # noqa: E402  (this folder's ratios.py, not an installed package)

FLOORS = HERE / "floors.json"


def simd_width() -> str:
    """``"avx512"``, ``"avx2"`` or ``"other"``: the widest x86 vector units this CPU has."""
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    if features.get("avx512f"):
        return "avx512"
    if features.get("avx2") and features.get("fma"):
        return "avx2"
    return "other"


def floors_for(width: str, table: dict) -> dict[str, float]:
    """The floors of ``width``; for a width without its own, the lowest of every width's."""
    by_width = table["floors"]
    if width in by_width:
        return by_width[width]
    cases = {case for floors in by_width.values() for case in floors}
    return {case: min(f[case] for f in by_width.values() if case in f) for case in cases}


#: One thread on each side: two threads' timings on a shared 2-core machine move with
#: whatever else runs (and BLAS threads spinning between calls), one thread's much less.
ONE_THREAD = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}


def run_benchmarks(commit: str) -> None:
    """One asv run of the floor benchmarks on one thread, results saved under ``commit``."""
    asv = [sys.executable, "-m", "asv"]
    env = {**os.environ, **ONE_THREAD}
    subprocess.run([*asv, "machine", "--yes"], cwd=HERE, check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*asv, "run", "--python=same", "--set-commit-hash", commit,
                    "--bench", "^floor\\.", "--attribute", "rounds=3",
                    "--attribute", "repeat=7", "--show-stderr"], cwd=HERE, check=True, env=env)


def measured_ratios(commit: str | None) -> dict[str, float]:
    """``{case: NumPy time / loopbp time}`` from the newest floor results (of ``commit``)."""
    _, data = ratios.load_latest(ratios.results_dir(), None, commit, "existing")
    found = {}
    for row in ratios.peer_rows(ratios.measurements(data),
                                ratios.results_dir() / "benchmarks.json"):
        module, case, _ = row["benchmark"].split(".")
        if module == "floor" and row["peer"] == "numpy":
            found[case] = row["ratio"]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true",
                        help="check the newest saved results instead of running asv")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, check=True,
                            capture_output=True, text=True).stdout.strip()
    if not args.no_run:
        run_benchmarks(commit)
    width = simd_width()
    floors = floors_for(width, json.loads(FLOORS.read_text()))
    found = measured_ratios(None if args.no_run else commit)
    print(f"performance floor ({width}): NumPy time / loopbp time, higher is faster")
    failed = []
    for case, floor in sorted(floors.items()):
        ratio = found.get(case)
        verdict = "MISSING" if ratio is None else ("ok" if ratio >= floor else "BELOW FLOOR")
        shown = "   n/a" if ratio is None else f"{ratio:6.2f}"
        print(f"  {case:20s} {shown}  floor {floor:5.2f}  {verdict}")
        if verdict != "ok":
            failed.append(case)
    if failed:
        print(f"performance floor: FAILED for {', '.join(failed)}", file=sys.stderr)
        return 1
    print("performance floor: all ratios at or above their floors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
