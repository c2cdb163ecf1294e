"""Print loopbp-versus-peer ratios from the latest asv results; optionally save them.

For every benchmark of a peer (a class whose name ends in ``NumPy``,
``Sklearn`` or ``Torch``) the twin loopbp benchmark is the same name without
the suffix, with the same parameters.  The ratio is

    peer time / loopbp time        (> 1: loopbp is faster)

computed per parameter combination from asv's recorded medians.  The summary
gives, per benchmark, peer and network size, the median of those ratios over
the other parameters (mini-batch size, dtype).  Thread scaling (1-thread time
/ 2-thread time), start-up times and peak memory are printed too.

Usage (from ``asv_benchmarks/``, after ``asv run``)::

    python ratios.py                      # the newest results file
    python ratios.py --json ratios.json --csv ratios.csv
    python ratios.py --commit 1a2b3c4d --machine mybox --env existing

Only the standard library is needed.
"""

from __future__ import annotations

import argparse
import ast
import csv
import itertools
import json
import math
import os
import statistics
import sys
from pathlib import Path

PEERS = {"NumPy": "numpy", "Sklearn": "scikit-learn", "Torch": "pytorch"}
HERE = Path(__file__).resolve().parent


def results_dir() -> Path:
    """``results_dir`` from ``asv.conf.json`` (which allows ``//`` comments), relative to it."""
    conf = HERE / "asv.conf.json"
    lines = [line for line in conf.read_text().splitlines()
             if not line.lstrip().startswith("//")]
    return HERE / json.loads("\n".join(lines)).get("results_dir", "results")


def result_files(root: Path, machine: str | None, commit: str | None, env: str | None):
    for path in sorted(root.glob("*/*.json")):
        if path.name in ("machine.json", "benchmarks.json"):
            continue
        if machine and path.parent.name != machine:
            continue
        if commit and not path.name.startswith(commit[:8]):
            continue
        if env and env not in path.stem:
            continue
        yield path


def last_started(data: dict) -> float:
    columns = data.get("result_columns", [])
    if "started_at" not in columns:
        return 0.0
    i = columns.index("started_at")
    times = [row[i] for row in data["results"].values() if len(row) > i and row[i]]
    return max(times, default=0.0)


def load_latest(root: Path, machine: str | None, commit: str | None,
                env: str | None) -> tuple[Path, dict]:
    candidates = []
    for path in result_files(root, machine, commit, env):
        with open(path) as f:
            data = json.load(f)
        if "results" in data:
            candidates.append((last_started(data), path, data))
    if not candidates:
        sys.exit(f"no asv results found under {root}; run `asv run` first")
    _, path, data = max(candidates, key=lambda c: (c[0], str(c[1])))
    return path, data


def measurements(data: dict) -> dict[str, dict[tuple, float]]:
    """``{benchmark: {(param values...): median}}``; failed or skipped entries left out."""
    columns = data["result_columns"]
    out = {}
    for name, row in data["results"].items():
        record = dict(zip(columns, row))
        values = record.get("result")
        if values is None:
            continue
        params = record.get("params") or []
        combos = itertools.product(*params) if params else [()]
        values = values if isinstance(values, list) else [values]
        table = {}
        for combo, value in zip(combos, values):
            if isinstance(value, int | float) and math.isfinite(value):
                table[tuple(_literal(p) for p in combo)] = float(value)
        out[name] = table
    return out


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def param_names(benchmarks_json: Path, name: str) -> list[str]:
    try:
        with open(benchmarks_json) as f:
            return json.load(f)[name]["param_names"]
    except (OSError, KeyError, ValueError):
        return []


def peer_rows(results: dict, names_file: Path) -> list[dict]:
    rows = []
    for name, table in sorted(results.items()):
        module, cls, method = name.rsplit(".", 2)
        for suffix, peer in PEERS.items():
            if not cls.endswith(suffix):
                continue
            twin = f"{module}.{cls[: -len(suffix)]}.{method}"
            mine = results.get(twin)
            if not mine:
                continue
            names = param_names(names_file, twin)
            for combo, peer_time in table.items():
                loopbp_time = mine.get(combo)
                if loopbp_time is None or loopbp_time <= 0:
                    continue
                row = {"benchmark": twin, "peer": peer}
                row.update(zip(names or [f"p{i}" for i in range(len(combo))], combo))
                row.update(loopbp_s=loopbp_time, peer_s=peer_time,
                           ratio=peer_time / loopbp_time)
                rows.append(row)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault((row["benchmark"], row["peer"], row.get("sizes")), []).append(
            row["ratio"])
    return [{"benchmark": b, "peer": p, "sizes": s, "median_ratio": statistics.median(r),
             "n": len(r)} for (b, p, s), r in groups.items()]


def thread_rows(results: dict) -> list[dict]:
    table = results.get("training.ThreadScaling.time_epoch", {})
    rows = []
    for (sizes, threads), seconds in sorted(table.items()):
        one = table.get((sizes, 1))
        if threads != 1 and one:
            rows.append({"sizes": sizes, "threads": threads, "one_thread_s": one,
                         "seconds": seconds, "speedup": one / seconds})
    return rows


def singles(results: dict) -> dict[str, float]:
    out = {}
    for name in ("startup.ColdStart.timeraw_cold_start", "startup.WarmStart.timeraw_warm_start"):
        if results.get(name):
            out[name] = next(iter(results[name].values()))
    return out


def memory_rows(results: dict) -> list[dict]:
    rows = []
    for name, table in sorted(results.items()):
        if ".peakmem_" in name:
            for combo, value in sorted(table.items()):
                rows.append({"benchmark": name, "params": list(combo), "bytes": value})
    return rows


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path,
                        help="asv results folder (default: from asv.conf.json)")
    parser.add_argument("--machine", help="machine name (a subfolder of the results)")
    parser.add_argument("--commit", help="commit hash or prefix (default: newest results)")
    parser.add_argument("--env", help="part of the environment name, e.g. 'existing'")
    parser.add_argument("--json", type=Path, help="write ratios, summary and extras as JSON")
    parser.add_argument("--csv", type=Path, help="write one row per ratio as CSV")
    parser.add_argument("--quiet", action="store_true", help="print nothing (with --json/--csv)")
    args = parser.parse_args(argv)

    root = args.results or results_dir()
    path, data = load_latest(root, args.machine, args.commit, args.env)
    results = measurements(data)
    rows = peer_rows(results, root / "benchmarks.json")
    summary = summarize(rows)
    threads, starts, memory = thread_rows(results), singles(results), memory_rows(results)
    source = {"file": os.path.relpath(path, HERE), "commit": data.get("commit_hash"),
              "env": data.get("env_name"), "machine": path.parent.name}

    if not args.quiet:
        print(f"results: {source['file']}  (commit {str(source['commit'])[:8]}, "
              f"env {source['env']})")
        print("\nratio = peer time / loopbp time (> 1: loopbp faster); median over batch, dtype")
        print(f"{'benchmark':<34} {'peer':<13} {'sizes':<8} {'ratio':>7} {'n':>3}")
        for s in summary:
            print(f"{s['benchmark']:<34} {s['peer']:<13} {s['sizes']!s:<8} "
                  f"{s['median_ratio']:>7.2f} {s['n']:>3}")
        if threads:
            print("\nthread scaling (epoch, batch 64, float64): 1-thread time / N-thread time")
            for t in threads:
                print(f"  {t['sizes']:<8} {t['threads']} threads: {fmt_time(t['seconds'])} "
                      f"(1 thread {fmt_time(t['one_thread_s'])}), speed-up {t['speedup']:.2f}")
        if starts:
            print("\nstart-up (fresh process: import + first mini-batch)")
            for name, seconds in starts.items():
                print(f"  {name.rsplit('.', 1)[1]:<20} {fmt_time(seconds)}")
        if memory:
            print("\npeak memory of one training epoch (whole process)")
            for m in memory:
                print(f"  {m['benchmark']:<32} {m['params']!s:<24} {m['bytes'] / 2**20:.0f} MiB")

    if args.json:
        args.json.write_text(json.dumps(
            {"source": source, "ratios": rows, "summary": summary, "threads": threads,
             "startup_s": starts, "peakmem": memory}, indent=1) + "\n")
    if args.csv:
        fields = sorted({k for r in rows for k in r},
                        key=lambda k: ["benchmark", "peer", "sizes", "batch", "dtype",
                                       "loopbp_s", "peer_s", "ratio"].index(k)
                        if k in ("benchmark", "peer", "sizes", "batch", "dtype", "loopbp_s",
                                 "peer_s", "ratio") else 99)
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
