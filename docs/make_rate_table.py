"""Arithmetic rates (GF/s) of loopbp and its peers, beside the machine's BLAS rate.

Writes ``docs/perf_rates.csv`` (one row per benchmark, network, mini-batch size
and dtype) and ``docs/perf_blas.csv`` (the rate of one large matrix product
through NumPy's BLAS on this machine), both shown on the Performance page and
committed, since a fresh clone has no benchmark results.

Usage, from the repository root, after an asv run of the ``training`` and
``inference`` benchmarks (see ``asv_benchmarks/README.md``)::

    python docs/make_rate_table.py

The rates come from asv's recorded medians; the work is counted the same way
for every implementation, as two floating-point operations per multiply-add of
the derivation's sums:

* feedforward of n rows: ``2 n Σ_l W_l``, where ``W_l`` is the number of
  weights of layer l (equation I1, one multiply-add per weight and example);
* one training epoch of n examples: the forward pass, the hidden errors (I5,
  every layer but the first) and the weight gradients (I6), that is
  ``2 n (2 Σ_l W_l + Σ_{l≥2} W_l)``.

Biases, activations, costs and updates are left out of the count (they are
a few percent of the work for these networks), so the figures slightly
understate every implementation alike.  The BLAS rate is measured here, now:
run this on the machine that produced the asv results.
"""

from __future__ import annotations

import csv
import itertools
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "asv_benchmarks"))

import ratios  # noqa: E402  (asv_benchmarks/ratios.py)
from benchmarks.common import EPOCH_EXAMPLES, INFERENCE_ROWS, SIZES  # noqa: E402

DOCS = ROOT / "docs"
PEERS = {"": "loopbp", "NumPy": "NumPy", "Sklearn": "scikit-learn", "Torch": "PyTorch"}
WORK = {"training.Epoch{}.time_epoch": "epoch", "inference.Feedforward{}.time_feedforward":
        "feedforward"}


def weights(sizes: list[int]) -> list[int]:
    """Number of weights of each layer, ``W_l = sizes[l] * sizes[l-1]``."""
    return [n_out * n_in for n_in, n_out in itertools.pairwise(sizes)]


def flops(work: str, sizes_name: str) -> float:
    """Floating-point operations of one timed call (see the module docstring)."""
    w = weights(SIZES[sizes_name])
    if work == "feedforward":
        return 2.0 * INFERENCE_ROWS[sizes_name] * sum(w)
    return 2.0 * EPOCH_EXAMPLES[sizes_name] * (2 * sum(w) + sum(w[1:]))


def blas_rate(dtype: str, n: int = 1024, repeats: int = 7) -> float:
    """GF/s of ``A @ B`` for n×n matrices through NumPy's BLAS (all its threads), best of a few."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


def rate_rows(results: dict) -> list[dict]:
    rows = []
    for template, work in WORK.items():
        tables = {peer: results.get(template.format(suffix), {})
                  for suffix, peer in PEERS.items()}
        for combo in sorted(tables["loopbp"]):
            sizes_name, dtype = combo[0], combo[-1]
            batch = combo[1] if len(combo) == 3 else ""
            row = {"work": work, "network": "-".join(map(str, SIZES[sizes_name])),
                   "mini-batch": batch, "dtype": dtype}
            for peer, table in tables.items():
                seconds = table.get(combo)
                row[f"{peer} GF/s"] = (f"{flops(work, sizes_name) / seconds / 1e9:.1f}"
                                       if seconds else "")
            rows.append(row)
    return rows


def main() -> int:
    path, data = ratios.load_latest(ratios.results_dir(), None, None, None)
    rows = rate_rows(ratios.measurements(data))
    if not rows:
        sys.exit(f"no training or inference benchmarks in {path}")
    with open(DOCS / "perf_rates.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(DOCS / "perf_blas.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dtype", "BLAS GF/s (1024 x 1024 product, all threads)"])
        for dtype in ("float64", "float32"):
            writer.writerow([dtype, f"{blas_rate(dtype):.1f}"])
    print(f"wrote {DOCS / 'perf_rates.csv'} and {DOCS / 'perf_blas.csv'} from {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
