"""Draw the speed chart of the page "Using loopbp from scikit-learn".

Reads the newest asv results of the ``estimators`` benchmarks (loopbp's
``MLPClassifier`` beside scikit-learn's, the same parameters and data) through
``asv_benchmarks/ratios.py`` and writes ``docs/_static/sklearn_speed.png`` and
``docs/sklearn_speed.csv`` (committed: a fresh clone has no results).  Each
bar is scikit-learn's time / loopbp's time, so to the right of 1 loopbp is
faster.

Usage, from the repository root::

    cd asv_benchmarks
    asv run --python=same --set-commit-hash $(git rev-parse HEAD) -b estimators
    cd .. && python docs/make_sklearn_chart.py
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
IMAGE = DOCS / "_static" / "sklearn_speed.png"
TABLE = DOCS / "sklearn_speed.csv"
WORK = {"EstimatorFit": "fit (5 epochs)", "EstimatorPredictProba": "predict_proba"}


def rows() -> list[dict]:
    sys.path.insert(0, str(ROOT / "asv_benchmarks"))
    import ratios

    path, data = ratios.load_latest(ratios.results_dir(), None, None, "existing")
    found = []
    for row in ratios.peer_rows(ratios.measurements(data),
                                ratios.results_dir() / "benchmarks.json"):
        module, cls, _ = row["benchmark"].split(".")
        if module == "estimators" and row["peer"] == "scikit-learn":
            found.append({"work": WORK[cls], "case": row["case"],
                          "loopbp_ms": round(1e3 * row["loopbp_s"], 1),
                          "scikit_learn_ms": round(1e3 * row["peer_s"], 1),
                          "ratio": round(row["ratio"], 2)})
    if not found:
        sys.exit(f"no estimators results in {path}; run the asv command in this script's doc")
    return found


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = rows()
    with open(TABLE, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    labels = [f"{r['work']}\n{r['case']}" for r in table]
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(table) + 1.2))
    colors = ["#4c72b0" if r["work"].startswith("fit") else "#dd8452" for r in table]
    ax.barh(range(len(table)), [r["ratio"] for r in table], color=colors)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(table)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("scikit-learn time / loopbp time (> 1: loopbp faster)")
    ax.set_title("loopbp.sklearn.MLPClassifier vs sklearn.neural_network.MLPClassifier",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(IMAGE, dpi=110)
    print(f"wrote {IMAGE.relative_to(ROOT)} and {TABLE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
