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

Beyond the derivations' sigmoid network, each further activation has a tag for
f and one for f′ (``tanh``, ``tanh'``, …, ``softmax'`` for the chain rule
through the softmax), each further cost one for C and one for its output error
δ^L (``xent``, ``xent'``, ``loglik``, ``loglik'``), and the training step has
``l2``, ``momentum``, ``nesterov`` and ``adam``; per-example weights and
scikit-learn's per-mini-batch L2 have ``weighted`` and ``alpha``.  They come from the published
definitions (the documentation derives each output error).

Every line of code in :data:`MARKED_MODULES` that implements one of these
carries a marker comment
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
    form: str  #: ``"index"``, ``"matrix"``, ``"activation"``, ``"cost"`` or ``"training"``
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
    # --- activations beyond the sigmoid: each f beside its f′ (through a) ----
    Equation("tanh", "activation", "—", r"a = \tanh z", "hyperbolic tangent"),
    Equation("tanh'", "activation", "—", r"\tanh'(z) = 1 - \tanh^2 z = 1 - a^2",
             "its derivative, through the activation"),
    Equation("relu", "activation", "—", r"a = \max(z, 0)", "rectified linear unit"),
    Equation("relu'", "activation", "—",
             r"f'(z) = \begin{cases} 1 & a > 0 \\ 0 & a = 0 \end{cases}",
             "its derivative: 1 where the unit is on (taken as 0 at z = 0)"),
    Equation("leaky", "activation", "—",
             r"a = \begin{cases} z & z > 0 \\ 0.01\,z & z \le 0 \end{cases}",
             "leaky ReLU: a small slope for z < 0 keeps the gradient alive"),
    Equation("leaky'", "activation", "—",
             r"f'(z) = \begin{cases} 1 & a > 0 \\ 0.01 & a \le 0 \end{cases}",
             "its derivative (a has the sign of z)"),
    Equation("identity", "activation", "—", r"a = z", "linear unit (regression outputs)"),
    Equation("identity'", "activation", "—", r"f'(z) = 1", "its derivative"),
    Equation("softmax", "activation", "—",
             r"a^L_j = \frac{e^{z^L_j}}{\sum_i e^{z^L_i}}",
             "softmax output: a distribution over the classes"),
    Equation("softmax'", "activation", "—",
             r"\delta^L_j = \sum_i \frac{\partial C}{\partial a^L_i} a^L_i "
             r"(1_{i=j} - a^L_j) = a^L_j \Big(g_j - \sum_i g_i a^L_i\Big), "
             r"\; g = \frac{\partial C}{\partial a^L}",
             "chain rule through the softmax's Jacobian (any cost)"),
    # --- costs beyond the quadratic: each C beside its δ^L ----------------
    Equation("xent", "cost", "—",
             r"C = -\sum_j \big[y_j \ln a^L_j + (1 - y_j) \ln(1 - a^L_j)\big]",
             "cross-entropy of one example (sigmoid outputs)"),
    Equation("xent'", "cost", "—", r"\delta^L_j = a^L_j - y_j",
             "its output error: σ′ cancels against ∂C/∂a"),
    Equation("loglik", "cost", "—", r"C = -\sum_j y_j \ln a^L_j",
             "log-likelihood of one example (softmax outputs)"),
    Equation("loglik'", "cost", "—", r"\delta^L_j = a^L_j - y_j",
             "its output error: the softmax Jacobian cancels against ∂C/∂a"),
    # --- training (unnumbered) --------------------------------------------
    Equation("avg", "training", "—",
             r"\frac{\partial C}{\partial w^l_{jk}} = \frac{1}{n} \sum_x "
             r"\frac{\partial C_x}{\partial w^l_{jk}}",
             "mini-batch averaging of per-example gradients (matrix form, conclusion)"),
    Equation("sgd", "training", "—",
             r"w^l_{jk} \leftarrow w^l_{jk} - \eta \frac{\partial C}{\partial w^l_{jk}}, \quad "
             r"b^l_j \leftarrow b^l_j - \eta \frac{\partial C}{\partial b^l_j}",
             "gradient-descent update with learning rate η"),
    Equation("l2", "training", "—",
             r"C = C_0 + \frac{\lambda}{2n} \sum_w w^2 \;\Rightarrow\; "
             r"\frac{\partial C}{\partial w} = \frac{\partial C_0}{\partial w} "
             r"+ \frac{\lambda}{n} w",
             "L2 regularization (weight decay) over a training set of n rows; biases are "
             "not decayed"),
    Equation("weighted", "training", "—",
             r"\frac{\partial C}{\partial w^l_{jk}} = \frac{\sum_x s_x\, \partial C_x / "
             r"\partial w^l_{jk}}{\sum_x s_x}",
             "per-example weights s_x ≥ 0: the mini-batch's gradient and cost are weighted "
             "means (as scikit-learn's sample_weight)"),
    Equation("alpha", "training", "—",
             r"C = C_0 + \frac{\alpha}{2 \sum_x s_x} \sum_w w^2 \;\Rightarrow\; "
             r"\frac{\partial C}{\partial w} = \frac{\partial C_0}{\partial w} "
             r"+ \frac{\alpha}{\sum_x s_x} w",
             "L2 regularization per mini-batch (scikit-learn's alpha): the sum runs over the "
             "mini-batch, s_x = 1 when unweighted"),
    Equation("momentum", "training", "—",
             r"v \leftarrow \mu v - \eta \frac{\partial C}{\partial w}, \quad "
             r"w \leftarrow w + v",
             "momentum: a velocity that accumulates past gradients"),
    Equation("nesterov", "training", "—",
             r"v \leftarrow \mu v - \eta \frac{\partial C}{\partial w}, \quad "
             r"w \leftarrow w + \mu v - \eta \frac{\partial C}{\partial w}",
             "Nesterov momentum, in the form that takes the gradient at the current w"),
    Equation("adam", "training", "—",
             r"m \leftarrow \beta_1 m + (1 - \beta_1) g, \; "
             r"v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \; "
             r"w \leftarrow w - \eta \frac{m / (1 - \beta_1^t)}"
             r"{\sqrt{v / (1 - \beta_2^t)} + \epsilon}",
             "Adam: moment estimates with bias correction at step t (g = ∂C/∂w)"),
)

#: The modules whose source carries equation markers.
MARKED_MODULES: tuple[str, ...] = ("loopbp.kernels", "loopbp.activations", "loopbp.costs")

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
