"""Draw the chart of loopbp against its peers for the Performance page.

Writes ``docs/_static/perf_peers.png`` (the chart) and ``docs/perf_peers.csv``
(the numbers it shows, printed as a table on the page).  Both are committed,
because a fresh clone has no benchmark results.

Usage, from the repository root::

    python docs/make_perf_chart.py                  # newest asv results (via ratios.py)
    python docs/make_perf_chart.py --ratios r.json  # a file from ratios.py --json
    python docs/make_perf_chart.py --measure        # no asv results: time here

The default reads the newest results under ``asv_benchmarks/results`` through
``asv_benchmarks/ratios.py``: for every benchmark with a peer (the NumPy
matrix form in :mod:`loopbp.reference`, scikit-learn, PyTorch) the ratio is
peer time / loopbp time, so a bar longer than 1 means loopbp is faster.

``--measure`` is the fallback when there are no asv results: it times one
training epoch (mini-batch SGD) of loopbp and of the NumPy matrix form on the
same data, the same order of examples and the same mini-batches, best of a
few repeats after a warm-up, and scikit-learn's ``MLPClassifier.partial_fit``
(one epoch of plain SGD with sigmoid hidden units; its output layer and loss
differ, so read that ratio as indicative).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
IMAGE = DOCS / "_static" / "perf_peers.png"
TABLE = DOCS / "perf_peers.csv"
RATIOS_SCRIPT = ROOT / "asv_benchmarks" / "ratios.py"
PEER_COLORS = {"numpy": "#4c72b0", "scikit-learn": "#dd8452", "pytorch": "#55a868"}


def asv_size_names() -> dict[str, str]:
    """The asv suite's named networks, e.g. ``{"small": "64-30-10"}`` (empty if unavailable)."""
    common = RATIOS_SCRIPT.parent / "benchmarks" / "common.py"
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("_asv_common", common)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return {name: "-".join(map(str, sizes)) for name, sizes in module.SIZES.items()}
    except Exception:  # the labels then show the names alone
        return {}


def from_ratios_json(path: Path) -> tuple[list[dict], str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    source = data.get("source", {})
    # Epochs and inference only: peak-memory benchmarks have peers too, but their ratio is
    # not a speed, and a single step (Step) times the fixed cost of one call more than work.
    names = asv_size_names()
    rows = [{"work": r["benchmark"], "peer": r["peer"], "ratio": float(r["median_ratio"]),
             "sizes": (f"{r['sizes']} ({names[r['sizes']]})" if r.get("sizes") in names
                       else str(r.get("sizes", "")))}
            for r in data.get("summary", [])
            if r["benchmark"].endswith((".time_epoch", ".time_feedforward"))]
    where = (f"asv results, commit {str(source.get('commit', '?'))[:8]}, "
             f"machine {source.get('machine', '?')}")
    return rows, where


def from_asv() -> tuple[list[dict], str]:
    if not RATIOS_SCRIPT.is_file():
        sys.exit(f"{RATIOS_SCRIPT} not found; use --ratios FILE or --measure")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ratios.json"
        subprocess.run([sys.executable, str(RATIOS_SCRIPT), "--json", str(out), "--quiet"],
                       check=True, cwd=RATIOS_SCRIPT.parent)
        return from_ratios_json(out)


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


CASES = {  # label: (sizes, examples, mini-batch size); the 64-30-10 case uses the digits
    "64-30-10": ([64, 30, 10], 1347, 10),
    "784-100-10": ([784, 100, 10], 3000, 32),
}


def time_one(peer: str, label: str, repeats: int) -> float:
    """Best time of one training epoch of ``peer`` on case ``label`` (run in its own process)."""
    import numpy as np

    import loopbp
    from loopbp import reference

    sizes, n, batch = CASES[label]
    rng = np.random.default_rng(0)
    if label == "64-30-10":
        digits = loopbp.datasets.load_digits()
        X, y = digits["X_train"], digits["y_train"]
    else:
        X, y = rng.random((n, sizes[0])), rng.integers(0, sizes[-1], n)
    Y = np.eye(sizes[-1])[y]
    net = loopbp.Network(sizes, seed=1)
    if peer == "loopbp":
        net.sgd(X, Y, epochs=1, mini_batch_size=batch, eta=0.5, progress=False)  # compile
        return _best(functools.partial(net.sgd, X, Y, epochs=1, mini_batch_size=batch,
                                       eta=0.5, progress=False), repeats)
    if peer == "numpy":
        order = rng.permutation(n)
        return _best(functools.partial(reference.sgd_epoch, net.weights, net.biases, X, Y,
                                       order, batch, 0.5), repeats)
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="logistic",
                        solver="sgd", batch_size=batch, learning_rate_init=0.5, momentum=0.0,
                        alpha=0.0, shuffle=True, random_state=0)
    mlp.partial_fit(X, y, classes=np.arange(sizes[-1]))
    return _best(functools.partial(mlp.partial_fit, X, y), repeats)


def measure(repeats: int) -> tuple[list[dict], str]:
    """Time one training epoch of loopbp and its peers, each in a fresh process.

    Separate processes keep the thread pools of numba and of the BLAS library
    from competing for the cores during each other's timings.
    """
    import importlib.util

    import loopbp

    peers = ["numpy"]
    if importlib.util.find_spec("sklearn") is not None:
        peers.append("scikit-learn")

    def run(peer: str, label: str) -> float:
        out = subprocess.run([sys.executable, __file__, "--time-one", peer, label,
                              "--repeats", str(repeats)],
                             check=True, capture_output=True, text=True)
        return float(out.stdout.split()[-1])

    rows = []
    for label in CASES:
        t_loopbp = run("loopbp", label)
        for peer in peers:
            rows.append({"work": "training epoch", "sizes": label, "peer": peer,
                         "ratio": run(peer, label) / t_loopbp})
    where = (f"measured by make_perf_chart.py --measure: one epoch, best of {repeats}, "
             f"{os.cpu_count()} CPUs, {loopbp.get_num_threads()} threads, "
             f"{datetime.date.today().isoformat()}")
    return rows, where


def _short(work: str) -> str:
    """``training.Epoch.time_epoch`` → ``Epoch``; other names unchanged."""
    parts = work.split(".")
    return parts[-2] if len(parts) >= 3 else work


def draw(rows: list[dict], where: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    groups = list(dict.fromkeys((r["work"], r["sizes"]) for r in rows))
    peers = list(dict.fromkeys(r["peer"] for r in rows))
    height = 0.8 / max(len(peers), 1)
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.26 * len(groups) * max(len(peers), 1)),
                           dpi=120)
    for p, peer in enumerate(peers):
        ys, ratios = [], []
        for g, (work, sizes) in enumerate(groups):
            for r in rows:
                if (r["work"], r["sizes"], r["peer"]) == (work, sizes, peer):
                    ys.append(g + (p - (len(peers) - 1) / 2) * height)
                    ratios.append(r["ratio"])
        # Bars grow from 1 (equal speed): right when loopbp is faster, left when slower.
        bars = ax.barh(ys, [abs(r - 1) for r in ratios], left=[min(r, 1) for r in ratios],
                       height=height * 0.9, label=peer, color=PEER_COLORS.get(peer, None))
        for bar, ratio in zip(bars, ratios):
            ax.annotate(f"{ratio:.2g}×", (ratio, bar.get_y() + bar.get_height() / 2),
                        xytext=(3 if ratio >= 1 else -3, 0), textcoords="offset points",
                        ha="left" if ratio >= 1 else "right", va="center", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ticks = FuncFormatter(lambda value, _pos: f"{value:g}")
    ax.xaxis.set_major_formatter(ticks)
    ax.xaxis.set_minor_formatter(FuncFormatter(
        lambda value, _pos: f"{value:g}" if f"{value:g}"[0] in "25" else ""))
    ax.set_yticks(range(len(groups)),
                  [f"{_short(work)}\n{sizes}" for work, sizes in groups], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("peer time / loopbp time   (> 1: loopbp is faster)")
    ax.set_title("loopbp against its peers", fontsize=11)
    ax.annotate(where, xy=(0, 0), xycoords="axes fraction", xytext=(0, -34),
                textcoords="offset points", fontsize=7, color="#555", ha="left", va="top")
    every = [r["ratio"] for r in rows] + [1.0]
    ax.set_xlim(min(every) / 1.6, max(every) * 1.6)
    ax.legend(title="peer", fontsize=8, title_fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    IMAGE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMAGE, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def write_table(rows: list[dict]) -> None:
    with open(TABLE, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["work", "network", "peer", "peer time / loopbp time"])
        for r in rows:
            writer.writerow([r["work"], r["sizes"], r["peer"], f"{r['ratio']:.3g}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--ratios", type=Path, help="a JSON file written by ratios.py --json")
    group.add_argument("--measure", action="store_true",
                       help="no asv results: time one training epoch of each here")
    parser.add_argument("--repeats", type=int, default=3, help="timings per case (--measure)")
    parser.add_argument("--time-one", nargs=2, metavar=("PEER", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.time_one:
        print(time_one(*args.time_one, args.repeats))
        return 0
    if args.measure:
        rows, where = measure(args.repeats)
    elif args.ratios:
        rows, where = from_ratios_json(args.ratios)
    else:
        rows, where = from_asv()
    if not rows:
        sys.exit("no loopbp-versus-peer numbers found")
    draw(rows, where)
    write_table(rows)
    print(f"wrote {IMAGE.relative_to(ROOT)} and {TABLE.relative_to(ROOT)} ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
