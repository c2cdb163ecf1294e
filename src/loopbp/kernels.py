"""The numbered equations as compiled loops.

Each kernel takes arrays and writes into arrays the caller allocated; nothing
here validates or touches Python objects, and the only allocation in a step is
the column form's scratch for one block of examples (:func:`_products_by_columns`).  Shapes follow
one convention throughout (``n`` examples of a mini-batch stored as rows):

============  ===================  ==========================================
array         shape                meaning
============  ===================  ==========================================
``w``         ``(n_out, n_in)``    ``w[j, k]`` = w_jk, row j = receiving neuron
``w_T``       ``(n_in, n_out)``    ``w_T[k, j] = w[j, k]`` (for the error sums)
``b``         ``(n_out,)``         ``b[j]`` = b_j
``a_prev``    ``(n, n_in)``        ``a_prev[x, k]`` = a^{l-1}_k of example x
``a``         ``(n, n_out)``       ``a[x, j]`` = a^l_j of example x
``delta``     ``(n, n_out)``       ``delta[x, j]`` = δ^l_j = ∂C_x/∂z^l_j
``dC_dw``     ``(n_out, n_in)``    mean over x of ∂C_x/∂w_jk
============  ===================  ==========================================

Loop letters follow the derivation: ``j`` receiving neurons, ``k`` sending
neurons, ``x`` examples.  Every line that implements an equation carries an
equation marker comment naming it (syntax and tags in :mod:`loopbp.equations`).

Speed without hiding the math
-----------------------------
``prange`` runs only over indices whose outputs are disjoint, and each output
element is summed by one thread in a fixed order, so results are bitwise
identical for any thread count.  The sums ``Σ_k w_jk a_k`` are computed in
*register tiles* (:func:`_sum_4x4`): sixteen plain sums, one per pair of 4
rows × 4 rows, accumulated together in one pass over the summed index so each
value loaded from memory feeds four multiply-adds.  The summed index is walked
in blocks that stay in cache (:func:`_sums_for_columns`); tiles that hang over
the edge of a matrix repeat its last row and store only the real sums.  For
small mini-batches the weight gradient uses a row form instead
(:func:`_add_outer_4x4`), which needs no transposed copies.  Layers with short
sums feed forward in the row form (:func:`_products_by_rows`), along rows of
the result, or when those rows are too short to fill the vector lanes, along
columns of a transposed block of examples (:func:`_products_by_columns`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._jit import helper, inline, kernel, serial, strict
from ._jit import serial_twins as _serial_twins
from .activations import (
    IDENTITY,
    LEAKY_RELU,
    RELU,
    SIGMOID,
    SOFTMAX,
    TANH,
    activation,
    activation_prime,
    softmax_columns,
    softmax_row,
)
from .costs import QUADRATIC, cost_term, output_error_term, quadratic_cost_derivative
from .optimizers import ADAM, NESTEROV, SGD

#: Rows per side of a register tile.
TILE = 4
#: From this batch size on, weight gradients use the register tile on
#: transposed copies; below it, the row form (fewer passes, no transposes).
TILED_GRADIENT_MIN_BATCH = 128
#: Square block edge for the cache-friendly transpose.
TRANSPOSE_BLOCK = 32
#: Entries of the summed index per pass of the register tiles.
SUM_BLOCK = 512
#: Rows of the left operand one task of a tiled sum works on (four tiles).
PANEL = 16
#: Sums of fewer terms than this are taken in the row form (:func:`_products_by_rows`):
#: the dot-product tile would spend more on its horizontal additions than on the sums.
ROW_FORM_MAX_SUM = 128
#: ... when each row of the result has at least this many entries to vectorize over.
ROW_FORM_MIN_WIDTH = 16
#: Layers with short sums and fewer neurons than this are fed forward by columns
#: (:func:`_products_by_columns`): a row of a few dozen entries leaves most of its
#: vector lanes to a scalar remainder, a column of a block of examples does not.
COLUMN_FORM_MAX_WIDTH = 64
#: Layers whose rows are wide enough for the row form (:data:`ROW_FORM_MIN_WIDTH`) take
#: the column form only for at least this many examples: for a few, the transposes cost
#: more than the short rows save.
COLUMN_FORM_MIN_ROWS = 64
#: Examples per task of the column form, transposed as one block: columns long enough
#: that a pass along them is mostly whole vectors, and a block's inputs (under 128 ×
#: 128 values) stay in the second-level cache.
COLUMN_BLOCK = 128
#: Weight matrices up to this many entries keep the row form for long sums too, in the
#: hidden errors and the gradients: it reads the matrix once per four rows, which costs
#: little while the matrix sits in the second-level cache, and needs no transposes.
ROW_FORM_MAX_WEIGHTS = 2 ** 18
#: Entries of a result row the row form updates per pass (they stay in cache).
ROW_BLOCK = 256
#: Rows (examples) per task of the dot-product tile's layers: a task's block of the
#: input stays in the second-level cache while every neuron panel reads it.
ROWS_PER_TASK = 64


@inline
def _tile_rows(first, count):
    """Four row indices from ``first``, repeating the last row (``count - 1``) past the end.

    A tile that hangs over the edge of a matrix thus computes a few sums twice
    and its caller stores only the real ones; every output is computed by the
    same tile code, whatever its position.
    """
    last = count - 1
    return first, min(first + 1, last), min(first + 2, last), min(first + 3, last)


@inline
def _sum_4x4(p, p_rows, q, q_rows, i0, i1):
    """The register tile: ``s[4r + c] = Σ_i p[p_rows[r], i] q[q_rows[c], i]``, i in [i0, i1).

    Both operands are read along their last, contiguous axis; the sixteen
    accumulators stay in registers for the whole pass over ``i``, so each
    value loaded feeds four multiply-adds.
    """
    p0, p1, p2, p3 = (p[p_rows[0], i0:i1], p[p_rows[1], i0:i1],
                      p[p_rows[2], i0:i1], p[p_rows[3], i0:i1])
    q0, q1, q2, q3 = (q[q_rows[0], i0:i1], q[q_rows[1], i0:i1],
                      q[q_rows[2], i0:i1], q[q_rows[3], i0:i1])
    zero = p.dtype.type(0)
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = zero
    for i in range(i1 - i0):
        p0i, p1i, p2i, p3i = p0[i], p1[i], p2[i], p3[i]
        q0i, q1i, q2i, q3i = q0[i], q1[i], q2[i], q3[i]
        s00 += p0i * q0i
        s01 += p0i * q1i
        s02 += p0i * q2i
        s03 += p0i * q3i
        s10 += p1i * q0i
        s11 += p1i * q1i
        s12 += p1i * q2i
        s13 += p1i * q3i
        s20 += p2i * q0i
        s21 += p2i * q1i
        s22 += p2i * q2i
        s23 += p2i * q3i
        s30 += p3i * q0i
        s31 += p3i * q1i
        s32 += p3i * q2i
        s33 += p3i * q3i
    return (s00, s01, s02, s03, s10, s11, s12, s13,
            s20, s21, s22, s23, s30, s31, s32, s33)


@helper
def _sums_for_columns(p, p0, q, out):
    """``out[x, r] = Σ_i p[r, i] q[x, i]`` for each row x of ``q``, rows r of a panel of ``p``.

    The panel is the :data:`PANEL` rows of ``p`` from ``p0``.  The summed
    index is taken in blocks of :data:`SUM_BLOCK`; within a block, each tile
    of four ``q`` rows is read once from memory and then met by every
    four-row tile of the panel while it sits in the first-level cache.  Each
    output adds its block sums in block order, so the result does not depend
    on which thread computes it.
    """
    n_q, n_i = q.shape
    n_p = p.shape[0]
    p1 = min(p0 + PANEL, n_p)
    for x in range(n_q):
        for r in range(p0, p1):
            out[x, r] = 0
    for i0 in range(0, n_i, SUM_BLOCK):
        i1 = min(i0 + SUM_BLOCK, n_i)
        for x0 in range(0, n_q, TILE):
            q_rows = _tile_rows(x0, n_q)
            for r0 in range(p0, p1, TILE):
                s = _sum_4x4(p, _tile_rows(r0, n_p), q, q_rows, i0, i1)
                for r in range(min(TILE, p1 - r0)):
                    for c in range(min(TILE, n_q - x0)):
                        out[x0 + c, r0 + r] += s[TILE * r + c]


@inline
def forward_by_rows(n_in, n_out):
    """Whether a layer's forward sums (over ``n_in`` inputs) may take the row form."""
    return n_in < ROW_FORM_MAX_SUM and n_out >= ROW_FORM_MIN_WIDTH


@inline
def forward_by_columns(n_in, n_out, n):
    """Whether a layer's forward sums over ``n`` examples take the column form.

    Short sums and few neurons; when the rows are wide enough for the row
    form, only for enough examples.  Both forms give the same bits, so the
    choice does not change any result.
    """
    return n_in < ROW_FORM_MAX_SUM and n_out < COLUMN_FORM_MAX_WIDTH and (
        n_out < ROW_FORM_MIN_WIDTH or n >= COLUMN_FORM_MIN_ROWS)


@inline
def backward_by_rows(n_in, n_out):
    """Whether a layer's error sums (over ``n_out`` outputs) and gradients take the row form."""
    return n_in >= ROW_FORM_MIN_WIDTH and (n_out < ROW_FORM_MAX_SUM
                                           or n_in * n_out <= ROW_FORM_MAX_WEIGHTS)


@inline
def _add_products_4x4(out, x0, p, k0, q, j0, j1):
    """Row-form register tile: ``out[x0+r, j] += Σ_c p[x0+r, k0+c] q[k0+c, j]``, r, c < 4.

    Sixteen values of ``p`` stay in registers for a pass along rows of ``q``
    and ``out`` (j in [j0, j1)), which the compiler vectorizes over j: each
    loaded and stored value of ``out`` carries four multiply-adds.
    """
    p00, p01, p02, p03 = p[x0, k0], p[x0, k0 + 1], p[x0, k0 + 2], p[x0, k0 + 3]
    p10, p11, p12, p13 = p[x0 + 1, k0], p[x0 + 1, k0 + 1], p[x0 + 1, k0 + 2], p[x0 + 1, k0 + 3]
    p20, p21, p22, p23 = p[x0 + 2, k0], p[x0 + 2, k0 + 1], p[x0 + 2, k0 + 2], p[x0 + 2, k0 + 3]
    p30, p31, p32, p33 = p[x0 + 3, k0], p[x0 + 3, k0 + 1], p[x0 + 3, k0 + 2], p[x0 + 3, k0 + 3]
    q0, q1, q2, q3 = q[k0, j0:j1], q[k0 + 1, j0:j1], q[k0 + 2, j0:j1], q[k0 + 3, j0:j1]
    o0, o1, o2, o3 = out[x0, j0:j1], out[x0 + 1, j0:j1], out[x0 + 2, j0:j1], out[x0 + 3, j0:j1]
    for j in range(j1 - j0):
        q0j, q1j, q2j, q3j = q0[j], q1[j], q2[j], q3[j]
        o0[j] += p00 * q0j + p01 * q1j + p02 * q2j + p03 * q3j
        o1[j] += p10 * q0j + p11 * q1j + p12 * q2j + p13 * q3j
        o2[j] += p20 * q0j + p21 * q1j + p22 * q2j + p23 * q3j
        o3[j] += p30 * q0j + p31 * q1j + p32 * q2j + p33 * q3j


@inline
def _add_products_1x4(out, x, p, k0, q, j0, j1):
    """One row of :func:`_add_products_4x4` (the rows left over by four-row tiles)."""
    p0, p1, p2, p3 = p[x, k0], p[x, k0 + 1], p[x, k0 + 2], p[x, k0 + 3]
    q0, q1, q2, q3 = q[k0, j0:j1], q[k0 + 1, j0:j1], q[k0 + 2, j0:j1], q[k0 + 3, j0:j1]
    o = out[x, j0:j1]
    for j in range(j1 - j0):
        o[j] += p0 * q0[j] + p1 * q1[j] + p2 * q2[j] + p3 * q3[j]


@inline
def _add_products_1x1(out, x, p, k, q, j0, j1):
    """``out[x, j] += p[x, k] q[k, j]`` (the sum's terms left over by groups of four)."""
    p_xk = p[x, k]
    q_k = q[k, j0:j1]
    o = out[x, j0:j1]
    for j in range(j1 - j0):
        o[j] += p_xk * q_k[j]


@helper
def _products_by_rows(out, p, q, x0, x1, j0, j1):
    """The row form: ``out[x, j] = Σ_k p[x, k] q[k, j]`` for x in [x0, x1), j in [j0, j1).

    For short sums: instead of one sum per output (the dot-product tile, whose
    horizontal additions cost as much as a short sum), whole rows of ``out``
    gather the products ``p[x, k] q[k, ·]``, four terms of the sum at a time,
    vectorized along the row.  Every output adds its terms in the same order
    (groups of four in k order, then the rest), whatever its position.
    """
    n_sum = p.shape[1]
    k_whole = n_sum - n_sum % 4
    x_whole = x1 - (x1 - x0) % 4
    for x in range(x0, x1):
        o = out[x, j0:j1]  # row views: indices from 0 need no wraparound, so loops vectorize
        for j in range(j1 - j0):
            o[j] = 0
    for x in range(x0, x_whole, 4):
        for k0 in range(0, k_whole, 4):
            _add_products_4x4(out, x, p, k0, q, j0, j1)
        for r in range(4):
            for k in range(k_whole, n_sum):
                _add_products_1x1(out, x + r, p, k, q, j0, j1)
    for x in range(x_whole, x1):
        for k0 in range(0, k_whole, 4):
            _add_products_1x4(out, x, p, k0, q, j0, j1)
        for k in range(k_whole, n_sum):
            _add_products_1x1(out, x, p, k, q, j0, j1)


@inline
def _add_bias_and_activate(a, b, x0, x1, j0, j1, f):
    """``a[x, j] ← f(a[x, j] + b[j])`` for the rows ``x0 … x1-1`` and neurons ``j0 … j1-1``."""
    b_j = b[j0:j1]
    for x in range(x0, x1):
        a_x = a[x, j0:j1]  # a row view (see _products_by_rows)
        for j in range(j1 - j0):
            z = a_x[j] + b_j[j]  # eq I1, M1: z_j = Σ_k w_jk a_k + b_j
            a_x[j] = activation(f, z)  # eq I2, M2: a_j = f(z_j)


@helper
def _bias_and_activation(a, b, x0, x1, j0, j1, f):
    """:func:`_add_bias_and_activate`, each loop compiled with its f known.

    A branch on f inside the loop costs the small networks several percent,
    and a loop that may meet every f compiles every f's code.
    """
    if f == SIGMOID:
        _add_bias_and_activate(a, b, x0, x1, j0, j1, SIGMOID)
    elif f == RELU:
        _add_bias_and_activate(a, b, x0, x1, j0, j1, RELU)
    elif f == TANH:
        _add_bias_and_activate(a, b, x0, x1, j0, j1, TANH)
    elif f == LEAKY_RELU:
        _add_bias_and_activate(a, b, x0, x1, j0, j1, LEAKY_RELU)
    else:  # identity, and a softmax layer's weighted inputs (the softmax follows)
        _add_bias_and_activate(a, b, x0, x1, j0, j1, IDENTITY)


@helper
def _products_by_columns(a, a_prev, w, b, x0, x1, f):
    """The column form: ``a[x, j] = f(Σ_k w_jk a_prev[x, k] + b_j)`` for x in [x0, x1).

    For layers with short sums and few neurons, whose rows of a few dozen
    entries would leave much of each pass to a scalar remainder.  The block
    of examples (at most :data:`COLUMN_BLOCK`) is transposed, so that a
    column holds one input of every example; :func:`_products_by_rows` then
    forms ``z_T[j, ·] = Σ_k w_jk a_T[k, ·]`` along whole columns, the
    activation (a softmax too) runs along them, and the block is transposed back.  Every
    output adds the same products in the same order as in the row form
    (groups of four in k order, then the rest), so both forms give the same bits.
    """
    n_in = a_prev.shape[1]
    n_out = w.shape[0]
    m = x1 - x0
    scratch = np.empty((n_in + n_out + 1, m), a.dtype)  # one allocation per block
    a_T = scratch[:n_in]  # the block's inputs, transposed
    z_T = scratch[n_in:n_in + n_out]  # its weighted inputs, transposed
    b_row = scratch[n_in + n_out]  # one neuron's bias, once per example
    for e in range(m):
        for k in range(n_in):
            a_T[k, e] = a_prev[x0 + e, k]
    first = np.int64(0)  # not a literal 0, which would compile another copy of the helper
    _products_by_rows(z_T, w, a_T, first, n_out, first, m)  # z_T[j, e] ← Σ_k w_jk a_T[k, e]
    for j in range(n_out):  # z_T[j, e] ← f(z_T[j, e] + b_j), by the rows' compiled loop
        for e in range(m):
            b_row[e] = b[j]
        _bias_and_activation(z_T, b_row, j, j + 1, first, m, f)
    if f == SOFTMAX:  # along the columns too (b_row is free again: it takes the maxima)
        softmax_columns(z_T, m, b_row, np.empty(m, np.float64))  # eq softmax
    for e in range(m):
        for j in range(n_out):
            a[x0 + e, j] = z_T[j, e]


@kernel
def forward_layer(w, w_T, b, a_prev, a, f):
    """Feed one layer forward: equations I1/M1 and I2/M2 for every example.

    ``a[x, j] = f(Σ_k w[j, k] a_prev[x, k] + b[j])`` for the activation whose
    code is ``f`` (:mod:`loopbp.activations`); a softmax layer finishes each
    row once all of its weighted inputs are known.  ``w_T`` holds ``w``
    transposed when the layer's sums are short (:func:`forward_by_rows`),
    and is not read otherwise.
    """
    n, n_in = a_prev.shape
    n_out = w.shape[0]
    if forward_by_columns(n_in, n_out, n):  # its softmax too is taken by columns
        for t in prange((n + COLUMN_BLOCK - 1) // COLUMN_BLOCK):  # a block of examples
            x0 = t * COLUMN_BLOCK
            _products_by_columns(a, a_prev, w, b, x0, min(x0 + COLUMN_BLOCK, n), f)
        return
    rows_form = forward_by_rows(n_in, n_out)
    # a task: a block of examples × a block of neurons (one grid for both forms, so the
    # activation loop below is compiled once)
    rows, cols = (PANEL, ROW_BLOCK) if rows_form else (ROWS_PER_TASK, PANEL)
    n_col_blocks = (n_out + cols - 1) // cols
    for t in prange(((n + rows - 1) // rows) * n_col_blocks):
        x0 = (t // n_col_blocks) * rows
        x1 = min(x0 + rows, n)
        j0 = (t % n_col_blocks) * cols
        j1 = min(j0 + cols, n_out)
        if rows_form:  # rows of z_x gather a_k w_T[k, ·]
            _products_by_rows(a, a_prev, w_T, x0, x1, j0, j1)  # a[x, j] ← Σ_k a_xk w_T[k, j]
        else:
            _sums_for_columns(w, j0, a_prev[x0:x1], a[x0:x1])  # a[x, j] ← Σ_k w_jk a_prev[x, k]
        _bias_and_activation(a, b, x0, x1, j0, j1, f)
    if f == SOFTMAX:
        for x in prange(n):
            softmax_row(a, x)  # eq softmax: a_j = e^{z_j} / Σ_i e^{z_i}


@serial
def batch_cost(a, y, cost, s):
    """Mean cost over the rows, ``(1/n) Σ_x C_x``, for the cost whose code is ``cost``.

    ``s`` holds per-row weights scaled to mean 1 (see :func:`weigh_errors`),
    or is empty for the plain mean.  A serial loop on purpose: a parallel
    reduction would add the per-thread partial sums in an order that depends
    on the thread count.
    """
    n = a.shape[0]
    eps = np.finfo(a.dtype).eps  # the clip for the logarithms (see loopbp.costs)
    if s.shape[0] > 0:
        total = _weighted_cost(a, y, cost, eps, s)
    elif cost == QUADRATIC:  # each sum compiled with its cost known, as in forward_layer
        total = _summed_cost(a, y, QUADRATIC, eps)
    else:
        total = _summed_cost(a, y, cost, eps)
    return total / n  # eq avg: C = (1/n) Σ_x C_x


@helper
def _summed_cost(a, y, cost, eps):
    """``Σ_x C_x`` over the rows of ``a`` (outputs) and ``y`` (targets)."""
    total = 0.0
    for x in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += cost_term(cost, a[x, j], y[x, j], eps)  # eq I3, xent, loglik: C_x
    return total


@helper
def _weighted_cost(a, y, cost, eps, s):
    """``Σ_x s_x C_x`` for weights ``s`` scaled to mean 1 over the rows."""
    total = 0.0
    for x in range(a.shape[0]):
        c_x = 0.0
        for j in range(a.shape[1]):
            c_x += cost_term(cost, a[x, j], y[x, j], eps)  # eq I3, xent, loglik: C_x
        total += s[x] * c_x  # eq weighted: C = Σ_x s_x C_x / Σ_x s_x
    return total


@kernel
def weigh_errors(delta, s):
    """Scale each row's output error by its weight: ``δ^L_x ← s_x δ^L_x``.

    With ``s`` scaled to mean 1 over the mini-batch (``s_x · n / Σ s``), every
    gradient is linear in its row's δ^L, so the mean that :func:`gradients`
    takes becomes the weighted mean ``Σ_x s_x ∂C_x/∂w / Σ_x s_x``.
    """
    for x in prange(delta.shape[0]):
        for j in range(delta.shape[1]):
            delta[x, j] *= s[x]  # eq weighted: ∂C/∂w = Σ_x s_x ∂C_x/∂w / Σ_x s_x


@strict
def softmax_quadratic_error(a, y, delta, x):
    """``δ_j = Σ_i ∂C/∂a_i ∂a_i/∂z_j = a_j (g_j − Σ_i g_i a_i)``, g = ∂C/∂a, for row ``x``.

    The softmax Jacobian ``∂a_i/∂z_j = a_i (1[i=j] − a_j)`` couples a row's
    outputs; the sum over i is taken once per row, in index order (compiled
    strict, like :func:`loopbp.activations.softmax_row`).
    """
    n_out = a.shape[1]
    g_dot_a = 0.0
    for i in range(n_out):
        g_dot_a += quadratic_cost_derivative(a[x, i], y[x, i]) * a[x, i]  # Σ_i g_i a_i
    for j in range(n_out):
        g_j = quadratic_cost_derivative(a[x, j], y[x, j])  # eq I3: ∂C/∂a_j = a_j − y_j
        delta[x, j] = a[x, j] * (g_j - g_dot_a)  # eq softmax', I4: δ_j = a_j (g_j − Σ_i g_i a_i)


@kernel
def output_error(a, y, delta, f, cost):
    """Error of the output layer, ``δ^L_j = ∂C/∂z^L_j`` (I3, I4, I2′; M3), for every pairing.

    Quadratic cost: ``δ_j = (a_j − y_j) f′(z_j)``, through the softmax's
    Jacobian when the output is a softmax.  Cross-entropy with a sigmoid
    output and log-likelihood with a softmax output: ``δ_j = a_j − y_j``.
    """
    n, n_out = a.shape
    for x in prange(n):
        if cost != QUADRATIC:
            for j in range(n_out):
                delta[x, j] = output_error_term(cost, a[x, j], y[x, j])  # eq xent', loglik': a − y
        elif f == SOFTMAX:
            softmax_quadratic_error(a, y, delta, x)
        elif f == SIGMOID:  # the derivations' network, compiled with f known
            _quadratic_error(a, y, delta, x, SIGMOID)
        else:
            _quadratic_error(a, y, delta, x, f)


@helper
def _quadratic_error(a, y, delta, x, f):
    """``δ_j = (a_j − y_j) f′(z_j)`` for row ``x`` (quadratic cost, output activation f)."""
    for j in range(a.shape[1]):
        dC_da = quadratic_cost_derivative(a[x, j], y[x, j])  # eq I3: ∂C/∂a_j = a_j − y_j
        delta[x, j] = dC_da * activation_prime(f, a[x, j])  # eq I4, I2', M3: δ = ∂C/∂a f'


@kernel
def transpose(w, w_T):
    """``w_T[k, j] = w[j, k]``, in square blocks so both sides stay in cache."""
    rows, cols = w.shape
    blocks_k = (cols + TRANSPOSE_BLOCK - 1) // TRANSPOSE_BLOCK
    for t in prange(((rows + TRANSPOSE_BLOCK - 1) // TRANSPOSE_BLOCK) * blocks_k):
        j0 = (t // blocks_k) * TRANSPOSE_BLOCK
        k0 = (t % blocks_k) * TRANSPOSE_BLOCK
        for k in range(k0, min(k0 + TRANSPOSE_BLOCK, cols)):
            for j in range(j0, min(j0 + TRANSPOSE_BLOCK, rows)):
                w_T[k, j] = w[j, k]


@inline
def _times_f_prime(delta_prev, a_prev, x0, x1, k0, k1, f):
    """``δ_k = ∂C/∂a_k · f′(z_k)`` in place, for rows ``x0 … x1-1``, neurons ``k0 … k1-1``."""
    for x in range(x0, x1):
        delta_x, a_x = delta_prev[x, k0:k1], a_prev[x, k0:k1]  # row views
        for k in range(k1 - k0):
            dC_da = delta_x[k]  # eq I5, I1', M4: ∂C/∂a_k = Σ_j w_jk δ_j
            delta_x[k] = dC_da * activation_prime(f, a_x[k])  # eq I4, I2', M4


@helper
def _f_prime_factor(delta_prev, a_prev, x0, x1, k0, k1, f):
    """:func:`_times_f_prime`, compiled with f known for the derivations' sigmoid."""
    if f == SIGMOID:
        _times_f_prime(delta_prev, a_prev, x0, x1, k0, k1, SIGMOID)
    else:
        _times_f_prime(delta_prev, a_prev, x0, x1, k0, k1, f)


@kernel
def hidden_error(w, w_T, delta, a_prev, delta_prev, f_prev):
    """Send the error back one layer: ``δ^{l-1}_k = (Σ_j w_jk δ^l_j) f′(z^{l-1}_k)``.

    Index-form I5 with I1′ (∂z_j/∂a_k = w_jk) and I4 with I2′; matrix-form M4.
    The row form (:func:`backward_by_rows`) takes rows of ``w``; otherwise
    the sums over ``j`` walk contiguous rows of ``w_T``, the layer's weight
    matrix transposed (see :func:`transpose`), which the row form does not read.
    ``f_prev`` is the code of layer l−1's activation.
    """
    n = delta.shape[0]
    n_out, n_in = w.shape
    rows_form = backward_by_rows(n_in, n_out)
    rows, cols = (PANEL, ROW_BLOCK) if rows_form else (ROWS_PER_TASK, PANEL)
    n_col_blocks = (n_in + cols - 1) // cols
    for t in prange(((n + rows - 1) // rows) * n_col_blocks):  # examples × sending neurons
        x0 = (t // n_col_blocks) * rows
        x1 = min(x0 + rows, n)
        k0 = (t % n_col_blocks) * cols
        k1 = min(k0 + cols, n_in)
        if rows_form:
            _products_by_rows(delta_prev, delta, w, x0, x1, k0, k1)  # δ_prev[x, k] ← Σ_j δ_xj w_jk
        else:
            _sums_for_columns(w_T, k0, delta[x0:x1], delta_prev[x0:x1])  # Σ_j w_jk δ[x, j]
        _f_prime_factor(delta_prev, a_prev, x0, x1, k0, k1, f_prev)


@inline
def _add_outer_4x4(dC_dw, j0, a_prev, x0, delta, inv_n):
    """Row-form register tile: ``dC_dw[j0+r, k] += Σ_c a_prev[x0+c, k] δ[x0+c, j0+r] / n``.

    Four rows j of ``dC_dw`` take the contributions of four examples x in one
    pass over k; the sixteen δ values, each divided by n once (so that no
    pass over ``dC_dw`` is left for the mean), stay in registers for the
    whole pass.
    """
    d00, d01 = delta[x0, j0] * inv_n, delta[x0 + 1, j0] * inv_n
    d02, d03 = delta[x0 + 2, j0] * inv_n, delta[x0 + 3, j0] * inv_n
    d10, d11 = delta[x0, j0 + 1] * inv_n, delta[x0 + 1, j0 + 1] * inv_n
    d12, d13 = delta[x0 + 2, j0 + 1] * inv_n, delta[x0 + 3, j0 + 1] * inv_n
    d20, d21 = delta[x0, j0 + 2] * inv_n, delta[x0 + 1, j0 + 2] * inv_n
    d22, d23 = delta[x0 + 2, j0 + 2] * inv_n, delta[x0 + 3, j0 + 2] * inv_n
    d30, d31 = delta[x0, j0 + 3] * inv_n, delta[x0 + 1, j0 + 3] * inv_n
    d32, d33 = delta[x0 + 2, j0 + 3] * inv_n, delta[x0 + 3, j0 + 3] * inv_n
    for k in range(a_prev.shape[1]):
        a0, a1, a2, a3 = a_prev[x0, k], a_prev[x0 + 1, k], a_prev[x0 + 2, k], a_prev[x0 + 3, k]
        dC_dw[j0, k] += a0 * d00 + a1 * d01 + a2 * d02 + a3 * d03  # eq I6, I1'', M5, avg
        dC_dw[j0 + 1, k] += a0 * d10 + a1 * d11 + a2 * d12 + a3 * d13  # eq I6, I1'', M5, avg
        dC_dw[j0 + 2, k] += a0 * d20 + a1 * d21 + a2 * d22 + a3 * d23  # eq I6, I1'', M5, avg
        dC_dw[j0 + 3, k] += a0 * d30 + a1 * d31 + a2 * d32 + a3 * d33  # eq I6, I1'', M5, avg


@inline
def _add_outer_4x2(dC_dw, j0, a_prev, x, delta, inv_n):
    """:func:`_add_outer_4x4` for two examples (of those left over after the groups of four)."""
    d00, d01 = delta[x, j0] * inv_n, delta[x + 1, j0] * inv_n
    d10, d11 = delta[x, j0 + 1] * inv_n, delta[x + 1, j0 + 1] * inv_n
    d20, d21 = delta[x, j0 + 2] * inv_n, delta[x + 1, j0 + 2] * inv_n
    d30, d31 = delta[x, j0 + 3] * inv_n, delta[x + 1, j0 + 3] * inv_n
    for k in range(a_prev.shape[1]):
        a0, a1 = a_prev[x, k], a_prev[x + 1, k]
        dC_dw[j0, k] += a0 * d00 + a1 * d01  # eq I6, I1'', M5, avg: a_k δ_j / n
        dC_dw[j0 + 1, k] += a0 * d10 + a1 * d11  # eq I6, I1'', M5, avg
        dC_dw[j0 + 2, k] += a0 * d20 + a1 * d21  # eq I6, I1'', M5, avg
        dC_dw[j0 + 3, k] += a0 * d30 + a1 * d31  # eq I6, I1'', M5, avg


@inline
def _add_outer_4x1(dC_dw, j0, a_prev, x, delta, inv_n):
    """:func:`_add_outer_4x4` for one example (the last of those left over)."""
    d0, d1 = delta[x, j0] * inv_n, delta[x, j0 + 1] * inv_n
    d2, d3 = delta[x, j0 + 2] * inv_n, delta[x, j0 + 3] * inv_n
    for k in range(a_prev.shape[1]):
        a_k = a_prev[x, k]
        dC_dw[j0, k] += a_k * d0  # eq I6, I1'', M5, avg: a_k δ_j / n
        dC_dw[j0 + 1, k] += a_k * d1  # eq I6, I1'', M5, avg
        dC_dw[j0 + 2, k] += a_k * d2  # eq I6, I1'', M5, avg
        dC_dw[j0 + 3, k] += a_k * d3  # eq I6, I1'', M5, avg


@kernel
def gradients(delta, a_prev, dC_dw, dC_db, delta_T, a_prev_T):
    """Mean gradients: ``∂C/∂w_jk = (1/n) Σ_x a_k δ_j`` and ``∂C/∂b_j = (1/n) Σ_x δ_j``.

    Index-form I6 with I1″ and I7 with I1‴; matrix-form M5 and M6; the mean
    over the rows is the mini-batch averaging of the matrix form's conclusion.
    ``delta_T`` and ``a_prev_T`` are scratch space for transposed copies, used
    when the batch and the weight matrix are large enough for the dot-product
    tile to pay (not :func:`backward_by_rows`).  For n ≥ 1 rows (callers check).
    """
    n, n_out = delta.shape
    n_in = a_prev.shape[1]
    inv_n = 1 / n
    if n >= TILED_GRADIENT_MIN_BATCH and not backward_by_rows(n_in, n_out):
        # Dot-product form: each dC_dw[j, k] is one sum over x, read along
        # contiguous rows of the transposed δ and activations.
        transpose(delta, delta_T)
        transpose(a_prev, a_prev_T)
        for t in prange((n_in + PANEL - 1) // PANEL):  # a panel of sending neurons k per task
            k0 = t * PANEL
            _sums_for_columns(a_prev_T, k0, delta_T, dC_dw)  # dC_dw[j, k] ← Σ_x a_k δ_j
            for j in range(n_out):
                for k in range(k0, min(k0 + PANEL, n_in)):
                    dC_dw[j, k] *= inv_n  # eq I6, I1'', M5, avg: (1/n) Σ_x a_k δ_j
        for j in prange(n_out):
            dC_db_j = delta.dtype.type(0)
            for x in range(n):
                dC_db_j += delta_T[j, x]  # eq I7, I1''', M6: ∂C/∂b_j = δ_j, summed over x
            dC_db[j] = dC_db_j * inv_n  # eq avg: mean over the mini-batch
        return
    # Row form: rows j of dC_dw gather a_k δ_j / n from each example in turn (no
    # transposes); the inner loop walks k contiguously.  A task takes a panel
    # of rows j, four at a time, so that the four rows stay in cache for all of
    # their passes: one per four examples, then one for two and one for one.
    whole = n - n % TILE  # examples handled four at a time
    inv_n_d = delta.dtype.type(inv_n)  # 1/n in δ's precision, so float32 tiles stay float32
    for t in prange((n_out + PANEL - 1) // PANEL):
        j0 = t * PANEL
        j1 = min(j0 + PANEL, n_out)
        j_whole = j1 - (j1 - j0) % TILE  # rows j handled four at a time
        for j in range(j0, j1):
            dC_db_j = delta.dtype.type(0)
            for x in range(n):
                dC_db_j += delta[x, j]  # eq I7, I1''', M6: ∂C/∂b_j = δ_j, summed over x
            dC_db[j] = dC_db_j * inv_n  # eq avg: mean over the mini-batch
        for j_quad in range(j0, j_whole, TILE):
            for j in range(j_quad, j_quad + TILE):  # the four rows start from zero, in cache
                for k in range(n_in):
                    dC_dw[j, k] = 0
            for x0 in range(0, whole, TILE):
                _add_outer_4x4(dC_dw, j_quad, a_prev, x0, delta, inv_n_d)
            rest = whole  # the first example left over
            if n - rest >= 2:
                _add_outer_4x2(dC_dw, j_quad, a_prev, rest, delta, inv_n_d)
                rest += 2
            if rest < n:
                _add_outer_4x1(dC_dw, j_quad, a_prev, rest, delta, inv_n_d)
        for j in range(j_whole, j1):
            delta_j = delta[0, j] * inv_n_d
            for k in range(n_in):
                dC_dw[j, k] = a_prev[0, k] * delta_j  # eq I6, I1'', M5, avg: a_k δ_j / n
            for x in range(1, n):
                delta_j = delta[x, j] * inv_n_d
                for k in range(n_in):
                    dC_dw[j, k] += a_prev[x, k] * delta_j  # eq I6, I1'', M5, avg: a_k δ_j / n


# --- the update: gradient descent and its refinements ------------------------------
#
# Each optimizer's rule for one parameter vector ``p`` (a row w[j, :] of a weight
# matrix, or the biases b) with gradient ``g`` of the mean data cost C_0.  The
# weight decay ``decay = λ/n`` of L2 regularization adds (λ/n) w to the weights'
# gradient (``decay`` is 0 for biases, which are not decayed).  Momentum and Adam
# are compiled strict (every operation rounded as written), so the parallel
# kernel and its serial twin give the same bits; plain SGD keeps the fused
# multiply-add of the derivations' network.


@inline
def sgd_step(p, g, eta, decay):
    """Gradient descent: ``p ← p − η (g + decay·p)`` (the plain ``p ← p − η g`` when decay = 0)."""
    if decay == 0:
        for k in range(p.shape[0]):
            p[k] -= eta * g[k]  # eq sgd: w ← w − η ∂C/∂w
    else:
        for k in range(p.shape[0]):
            p[k] -= eta * (g[k] + decay * p[k])  # eq sgd, l2: w ← w − η (∂C_0/∂w + (λ/n) w)


@strict
def momentum_step(p, g, v, eta, decay, mu, nesterov):
    """Momentum: ``v ← μ v − η g``, then ``p ← p + v`` (Nesterov: ``p ← p + μ v − η g``)."""
    for k in range(p.shape[0]):
        g_k = g[k] + decay * p[k]  # eq l2: ∂C/∂w = ∂C_0/∂w + (λ/n) w
        v[k] = mu * v[k] - eta * g_k  # eq momentum, nesterov: v ← μ v − η ∂C/∂w
        if nesterov:
            p[k] += mu * v[k] - eta * g_k  # eq nesterov: w ← w + μ v − η ∂C/∂w
        else:
            p[k] += v[k]  # eq momentum: w ← w + v


@strict
def adam_step(p, g, m, v, eta, decay, beta1, beta2, epsilon, c1, c2):
    """Adam with bias correction: ``c1 = 1 − β1^t`` and ``c2 = 1 − β2^t`` at step t.

    m̂ = m / c1 and v̂ = v / c2 are taken as products with 1/c1 and 1/c2,
    computed once: divisions and square roots set the pace of this loop.
    """
    inv_c1, inv_c2 = 1 / c1, 1 / c2
    for k in range(p.shape[0]):
        g_k = g[k] + decay * p[k]  # eq l2: ∂C/∂w = ∂C_0/∂w + (λ/n) w
        m[k] = beta1 * m[k] + (1 - beta1) * g_k  # eq adam: m ← β1 m + (1 − β1) g
        v[k] = beta2 * v[k] + (1 - beta2) * g_k * g_k  # eq adam: v ← β2 v + (1 − β2) g²
        m_hat, v_hat = m[k] * inv_c1, v[k] * inv_c2  # eq adam: m̂ = m/(1 − β1^t), v̂ likewise
        p[k] -= eta * m_hat / (math.sqrt(v_hat) + epsilon)  # eq adam: w ← w − η m̂ / (√v̂ + ε)


@kernel
def update(w, b, dC_dw, dC_db, rule, hyper, v_w, v_b, m_w, m_b):
    """Apply one optimizer step to a layer's weights and biases.

    ``rule`` is the optimizer's code (:mod:`loopbp.optimizers`) and
    ``hyper = (eta, decay, mu, beta1, beta2, epsilon, c1, c2)``.  ``v_*`` hold
    the velocities (momentum, Nesterov) or second moments (Adam), ``m_*`` the
    first moments (Adam); arrays an optimizer does not keep are never read
    (callers may pass any array of the right type, e.g. empty ones).
    """
    eta, decay, mu, beta1, beta2, epsilon, c1, c2 = hyper
    n_out = w.shape[0]
    for j in prange(n_out):
        if rule == SGD:
            sgd_step(w[j], dC_dw[j], eta, decay)
        elif rule == ADAM:
            adam_step(w[j], dC_dw[j], m_w[j], v_w[j], eta, decay, beta1, beta2, epsilon, c1, c2)
        else:
            momentum_step(w[j], dC_dw[j], v_w[j], eta, decay, mu, rule == NESTEROV)
    no_decay = 0.0  # biases are not decayed
    if rule == SGD:
        sgd_step(b, dC_db, eta, no_decay)
    elif rule == ADAM:
        adam_step(b, dC_db, m_b, v_b, eta, no_decay, beta1, beta2, epsilon, c1, c2)
    else:
        momentum_step(b, dC_db, v_b, eta, no_decay, mu, rule == NESTEROV)


# --- whole passes over a network: serial drivers that call the kernels ----------


@serial
def needs_transpose(w, backward):
    """Whether :func:`forward_layer` (or, with ``backward``, :func:`hidden_error`) reads
    the transpose of the layer's weights ``w``."""
    n_out, n_in = w.shape
    return forward_by_rows(n_in, n_out) or (backward and not backward_by_rows(n_in, n_out))


@serial
def feedforward(weights, weights_T, biases, X, out, acts, f_codes):
    """Output activations for every row of ``X``, in chunks of ``acts[0].shape[0]`` rows.

    ``acts[i]`` are buffers of shape ``(chunk, sizes[i])`` for the hidden
    layers (``acts[0]`` only gives the chunk's row count: the first layer
    reads ``X`` in place); ``out`` receives the last layer's activations,
    shape ``(len(X), sizes[-1])``; ``f_codes[i]`` is the activation code of
    layer i+1.  ``weights_T[i]`` holds ``weights[i]``
    transposed where :func:`forward_layer` reads it (:func:`needs_transpose`).
    """
    n = X.shape[0]
    chunk = acts[0].shape[0]
    n_layers = len(weights)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        a_prev = X[start:start + m]  # the first layer reads the inputs in place
        for i in range(n_layers):
            a = out[start:start + m] if i == n_layers - 1 else acts[i + 1][:m]
            forward_layer(weights[i], weights_T[i], biases[i], a_prev, a, f_codes[i])
            a_prev = a


@inline
def backprop(weights, biases, weights_T, nabla_w, nabla_b, ws, f_codes, cost, s):
    """Forward and backward pass for the mini-batch already in the workspace ``ws``.

    ``ws = (acts, Y, deltas, deltas_T, acts_T)``: ``acts[0]`` holds the inputs
    and ``Y`` the targets.  ``f_codes[i]`` is the activation code of layer
    i+1, ``cost`` the cost's code.  ``s`` holds per-row weights scaled to mean
    1, or is empty (the plain mean).  Fills ``nabla_w``/``nabla_b`` with the
    (weighted) mean gradients and returns the batch's (weighted) mean cost
    before any update.
    ``weights_T[i]`` must hold the transpose of ``weights[i]`` where
    :func:`needs_transpose` says so (``backward`` for ``i >= 1``).
    """
    acts, Y, deltas, deltas_T, acts_T = ws
    n_layers = len(weights)
    for i in range(n_layers):
        forward_layer(weights[i], weights_T[i], biases[i], acts[i], acts[i + 1], f_codes[i])
    mean_cost = batch_cost(acts[n_layers], Y, cost, s)
    output_error(acts[n_layers], Y, deltas[n_layers - 1], f_codes[n_layers - 1], cost)
    if s.shape[0] > 0:
        weigh_errors(deltas[n_layers - 1], s)
    for i in range(n_layers - 1, 0, -1):
        hidden_error(weights[i], weights_T[i], deltas[i], acts[i], deltas[i - 1],
                     f_codes[i - 1])
    for i in range(n_layers):
        gradients(deltas[i], acts[i], nabla_w[i], nabla_b[i], deltas_T[i], acts_T[i])
    return mean_cost


@serial
def train_mini_batches(weights, biases, X, Y, S, order, first, stop, f_codes, cost, rule, hyper,
                       v_w, v_b, m_w, m_b, step, weights_T, nabla_w, nabla_b, ws_full, ws_tail,
                       s_full, s_tail, batch_costs):
    """Run mini-batch gradient descent over mini-batches ``first … stop-1`` of an epoch.

    ``f_codes`` and ``cost`` name the activations and the cost by code;
    ``rule`` is the optimizer's code and ``hyper`` holds its hyperparameters
    ``(eta, decay, mu, beta1, beta2, epsilon, alpha)`` with ``decay = λ/n``
    (network2's L2 over the n training rows) and ``alpha`` scikit-learn's L2
    per mini-batch (each step decays by ``alpha / Σ_x s_x`` over its rows);
    ``v_*`` and ``m_*`` are its arrays (see :func:`update`) and ``step[0]``
    its step count, which each mini-batch advances.  (Plain arrays and
    numbers rather than tuples: numba types tuple arguments in Python, which
    a small epoch notices.)

    ``S`` holds one weight per row of ``X`` (each mini-batch's gradient and
    cost are then weighted means), or is empty for the plain means;
    ``s_full``/``s_tail`` are buffers for a mini-batch's weights, sized like
    the workspaces (empty when ``S`` is).

    Returns the sum over the examples seen of their cost before the update
    (divide by the number of examples for the mean), and writes each
    mini-batch's share into ``batch_costs[m]``, so that an epoch's total can
    be added up in one fixed order however the epoch was split into calls.

    Mini-batch ``m`` holds the rows ``order[m*B : (m+1)*B]`` of ``X``/``Y``,
    where ``B`` is the row count of the full workspace ``ws_full``; the last
    batch of an epoch may be shorter and then uses ``ws_tail``, sized for it.
    Both workspaces are made before the call (or lent from an earlier one); a step
    allocates only the column form's block scratch (:func:`_products_by_columns`).
    """
    eta, decay, mu = hyper[0], hyper[1], hyper[2]
    beta1, beta2, epsilon, alpha = hyper[3], hyper[4], hyper[5], hyper[6]
    n = X.shape[0]
    batch_size = ws_full[0][0].shape[0]
    n_layers = len(weights)
    for i in range(n_layers):  # only the transposes the kernels read
        if needs_transpose(weights[i], i >= 1):
            transpose(weights[i], weights_T[i])
    cost_sum = 0.0
    for m in range(first, stop):
        start = m * batch_size
        full = n - start >= batch_size
        ws = ws_full if full else ws_tail
        s = s_full if full else s_tail
        acts, Y_batch = ws[0], ws[1]
        rows = acts[0].shape[0]
        inputs = acts[0]
        for r in range(rows):  # gather the mini-batch in shuffled order (element loops: a
            x = order[start + r]  # slice assignment would compile numba's shape-error text)
            for k in range(X.shape[1]):
                inputs[r, k] = X[x, k]
            for j in range(Y.shape[1]):
                Y_batch[r, j] = Y[x, j]
        weight_sum = float(rows)
        if S.shape[0] > 0:
            weight_sum = 0.0
            for r in range(rows):
                s[r] = S[order[start + r]]
                weight_sum += s[r]
            scale = rows / weight_sum if weight_sum > 0 else 0.0
            for r in range(rows):
                s[r] *= scale  # mean 1, so the kernels' (1/n) Σ_x is the weighted mean
        batch_costs[m] = rows * backprop(weights, biases, weights_T, nabla_w, nabla_b, ws,
                                         f_codes, cost, s)
        cost_sum += batch_costs[m]
        step[0] += 1
        t = step[0]
        step_decay = decay
        if alpha != 0 and weight_sum > 0:
            step_decay = decay + alpha / weight_sum  # eq alpha: ∂C/∂w += (α / Σ_x s_x) w
        step_hyper = (eta, step_decay, mu, beta1, beta2, epsilon, 1 - beta1 ** t, 1 - beta2 ** t)
        for i in range(n_layers):
            dC_dw, dC_db = nabla_w[i], nabla_b[i]
            if rule == SGD:  # no state: skip fetching it (each fetch counts references)
                update(weights[i], biases[i], dC_dw, dC_db, rule, step_hyper,
                       dC_dw, dC_db, dC_dw, dC_db)
            else:
                update(weights[i], biases[i], dC_dw, dC_db, rule, step_hyper,
                       v_w[i], v_b[i], m_w[i], m_b[i])
            if needs_transpose(weights[i], i >= 1):
                transpose(weights[i], weights_T[i])
    return cost_sum


#: The same kernels and drivers compiled without threads, for work too small
#: to share out (chosen by :func:`loopbp.network.kernels_for`).
SERIAL = _serial_twins(globals(), [
    "forward_layer", "output_error", "weigh_errors", "transpose", "hidden_error", "gradients",
    "update", "feedforward", "backprop", "train_mini_batches",
])
