"""The numbered equations loopbp implements, and the tags its code uses for them.

loopbp follows two derivations of backpropagation and names their equations
with a letter and the number the derivation gives them:

* ``I`` — the *index form*: sums over neuron indices, weights written
  :math:`w^l_{jk}` (``j`` receiving, ``k`` sending), equations (1)–(7) and the
  primed intermediate results (1′), (1″), (1‴), (2′).
* ``M`` — the *matrix form*: whole layers as vectors, weights written
  :math:`w^l_{ij}` (``i`` receiving, ``j`` sending — the same object as
  :math:`w^l_{jk}`), equations (1)–(6).

Two steps are not numbered in either text but are part of training, and have
tags of their own: ``avg`` (the matrix form's conclusion: per-example gradients
are averaged over a mini-batch) and ``sgd`` (the gradient-descent update).

Every line of kernel code that implements one of these carries a marker comment
of the form ``# eq I1, M1: z_j = Σ_k w_jk a_k + b_j``.  The test suite checks
that every tag below appears in such a marker and every marker names a tag
below; the documentation builds its concordance table from :data:`EQUATIONS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Equation:
    """One numbered equation (or named step) of the derivations."""

    tag: str  #: how the code's markers name it, e.g. ``"I5"`` or ``"M4"``
    form: str  #: ``"index"``, ``"matrix"`` or ``"training"``
    number: str  #: the number as the derivation prints it, e.g. ``"(1′)"``
    latex: str  #: the equation, in LaTeX
    meaning: str  #: one line in words


EQUATIONS: tuple[Equation, ...] = (
    # --- index form --------------------------------------------------------
    Equation("I1", "index", "(1)", r"z^l_j = \sum_k w^l_{jk} a^{l-1}_k + b^l_j",
             "weighted input of neuron j in layer l"),
    Equation("I2", "index", "(2)", r"a^l_j = \sigma(z^l_j)", "activation"),
    Equation("I3", "index", "(3)", r"C = \frac{1}{2} \sum_j (y_j - a^L_j)^2",
             "quadratic cost of one example; its derivative for output j is a − y"),
    Equation("I4", "index", "(4)",
             r"\frac{\partial C}{\partial z^l_j} = "
             r"\frac{\partial C}{\partial a^l_j} \frac{\partial a^l_j}{\partial z^l_j}",
             "chain rule through the activation"),
    Equation("I5", "index", "(5)",
             r"\frac{\partial C}{\partial a^{l-1}_k} = "
             r"\sum_j \frac{\partial C}{\partial z^l_j} \frac{\partial z^l_j}{\partial a^{l-1}_k}",
             "chain rule back through the weights: the error sent to layer l−1"),
    Equation("I6", "index", "(6)",
             r"\frac{\partial C}{\partial w^l_{jk}} = "
             r"\frac{\partial C}{\partial z^l_j} \frac{\partial z^l_j}{\partial w^l_{jk}}",
             "weight gradient"),
    Equation("I7", "index", "(7)",
             r"\frac{\partial C}{\partial b^l_j} = "
             r"\frac{\partial C}{\partial z^l_j} \frac{\partial z^l_j}{\partial b^l_j}",
             "bias gradient"),
    Equation("I1'", "index", "(1′)", r"\frac{\partial z^l_j}{\partial a^{l-1}_k} = w^l_{jk}",
             "from (1): how z_j moves with a_k"),
    Equation("I1''", "index", "(1″)", r"\frac{\partial z^l_j}{\partial w^l_{jk}} = a^{l-1}_k",
             "from (1): how z_j moves with w_jk"),
    Equation("I1'''", "index", "(1‴)", r"\frac{\partial z^l_j}{\partial b^l_j} = 1",
             "from (1): how z_j moves with b_j"),
    Equation("I2'", "index", "(2′)",
             r"\frac{\partial a^l_j}{\partial z^l_j} = \sigma'(z^l_j)",
             "from (2): for the sigmoid, σ′(z) = σ(z)(1 − σ(z))"),
    # --- matrix form -------------------------------------------------------
    Equation("M1", "matrix", "(1)", r"\mathbf{Z}^l = \mathbf{W}^l \mathbf{A}^{l-1} + \mathbf{B}^l",
             "weighted inputs of a layer"),
    Equation("M2", "matrix", "(2)", r"\mathbf{A}^l = \sigma(\mathbf{Z}^l)",
             "activations (printed as Z = σ(A) in the source; A = σ(Z) is meant)"),
    Equation("M3", "matrix", "(3)",
             r"\Delta^L = (\mathbf{A}^L - \mathbf{Y}) \odot \sigma'(\mathbf{Z}^L)",
             "output error"),
    Equation("M4", "matrix", "(4)",
             r"\Delta^l = \mathbf{W}^{l+1\,T} \Delta^{l+1} \odot \sigma'(\mathbf{Z}^l)",
             "hidden error"),
    Equation("M5", "matrix", "(5)",
             r"\frac{\partial C}{\partial w^l_{jk}} = a^{l-1}_k \delta^l_j", "weight gradient"),
    Equation("M6", "matrix", "(6)", r"\frac{\partial C}{\partial b^l_j} = \delta^l_j",
             "bias gradient"),
    # --- training (unnumbered) --------------------------------------------
    Equation("avg", "training", "—",
             r"\frac{\partial C}{\partial w^l_{jk}} = \frac{1}{n} \sum_x "
             r"\frac{\partial C_x}{\partial w^l_{jk}}",
             "mini-batch averaging of per-example gradients (matrix form, conclusion)"),
    Equation("sgd", "training", "—",
             r"w^l_{jk} \leftarrow w^l_{jk} - \eta \frac{\partial C}{\partial w^l_{jk}}, \quad "
             r"b^l_j \leftarrow b^l_j - \eta \frac{\partial C}{\partial b^l_j}",
             "gradient-descent update with learning rate η"),
)

#: Tags by name.
BY_TAG: dict[str, Equation] = {eq.tag: eq for eq in EQUATIONS}

#: A marker comment: ``# eq TAG[, TAG ...]: formula``.
MARKER = re.compile(r"#\s*eq\s+(?P<tags>[A-Za-z0-9',\s]+?):\s*(?P<formula>.*)$")


def markers_in(source: str) -> list[tuple[int, list[str], str]]:
    """Every equation marker in ``source``: ``(line number, tags, formula)``."""
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = MARKER.search(line)
        if match:
            tags = [t.strip() for t in match["tags"].split(",") if t.strip()]
            found.append((number, tags, match["formula"].strip()))
    return found
