"""The numbered equations as compiled loops.

Each kernel takes arrays and writes into arrays the caller allocated; nothing
here validates, allocates per step, or touches Python objects.  Shapes follow
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
(:func:`_add_outer_4x4`), which needs no transposed copies.
"""

from __future__ import annotations

from numba import prange

from ._jit import inline, kernel, serial
from ._jit import serial_twins as _serial_twins
from .activations import sigmoid, sigmoid_prime
from .costs import quadratic_cost_derivative, quadratic_cost_term

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


@inline
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


@kernel
def forward_layer(w, b, a_prev, a):
    """Feed one layer forward: equations I1/M1 and I2/M2 for every example.

    ``a[x, j] = σ(Σ_k w[j, k] a_prev[x, k] + b[j])``.
    """
    n = a_prev.shape[0]
    n_out = w.shape[0]
    for t in prange((n_out + PANEL - 1) // PANEL):  # a panel of neurons j per task
        j0 = t * PANEL
        _sums_for_columns(w, j0, a_prev, a)  # a[x, j] ← Σ_k w[j, k] a_prev[x, k]
        for x in range(n):
            for j in range(j0, min(j0 + PANEL, n_out)):
                z = a[x, j] + b[j]  # eq I1, M1: z_j = Σ_k w_jk a_k + b_j
                a[x, j] = sigmoid(z)  # eq I2, M2: a_j = σ(z_j)


@serial
def quadratic_cost(a, y):
    """Mean quadratic cost over the rows: ``(1/n) Σ_x ½ Σ_j (y_xj − a_xj)²``.

    A serial loop on purpose: a parallel reduction would add the per-thread
    partial sums in an order that depends on the thread count.
    """
    n, n_out = a.shape
    total = 0.0
    for x in range(n):
        for j in range(n_out):
            total += quadratic_cost_term(a[x, j], y[x, j])  # eq I3: C = ½ Σ_j (y_j − a_j)²
    return total / n  # eq avg: C = (1/n) Σ_x C_x


@kernel
def output_error(a, y, delta):
    """Error of the output layer: ``δ^L_j = (a^L_j − y_j) σ′(z^L_j)`` (I3, I4, I2′; M3)."""
    n, n_out = a.shape
    for x in prange(n):
        for j in range(n_out):
            dC_da = quadratic_cost_derivative(a[x, j], y[x, j])  # eq I3: ∂C/∂a_j = a_j − y_j
            delta[x, j] = dC_da * sigmoid_prime(a[x, j])  # eq I4, I2', M3: δ_j = ∂C/∂a_j σ'(z_j)


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


@kernel
def hidden_error(w_T, delta, a_prev, delta_prev):
    """Send the error back one layer: ``δ^{l-1}_k = (Σ_j w_jk δ^l_j) σ′(z^{l-1}_k)``.

    Index-form I5 with I1′ (∂z_j/∂a_k = w_jk) and I4 with I2′; matrix-form M4.
    ``w_T`` is the layer's weight matrix transposed (see :func:`transpose`), so
    the sum over ``j`` walks contiguous memory.
    """
    n = delta.shape[0]
    n_in = w_T.shape[0]
    for t in prange((n_in + PANEL - 1) // PANEL):  # a panel of sending neurons k per task
        k0 = t * PANEL
        _sums_for_columns(w_T, k0, delta, delta_prev)  # δ_prev[x, k] ← Σ_j w[j, k] δ[x, j]
        for x in range(n):
            for k in range(k0, min(k0 + PANEL, n_in)):
                dC_da = delta_prev[x, k]  # eq I5, I1', M4: ∂C/∂a_k = Σ_j w_jk δ_j
                delta_prev[x, k] = dC_da * sigmoid_prime(a_prev[x, k])  # eq I4, I2', M4


@inline
def _add_outer_4x4(dC_dw, j0, a_prev, x0, delta):
    """Row-form register tile: ``dC_dw[j0+r, k] += Σ_c a_prev[x0+c, k] δ[x0+c, j0+r]``.

    Four rows j of ``dC_dw`` take the contributions of four examples x in one
    pass over k; the sixteen δ values stay in registers for the whole pass.
    """
    d00, d01, d02, d03 = delta[x0, j0], delta[x0 + 1, j0], delta[x0 + 2, j0], delta[x0 + 3, j0]
    d10, d11 = delta[x0, j0 + 1], delta[x0 + 1, j0 + 1]
    d12, d13 = delta[x0 + 2, j0 + 1], delta[x0 + 3, j0 + 1]
    d20, d21 = delta[x0, j0 + 2], delta[x0 + 1, j0 + 2]
    d22, d23 = delta[x0 + 2, j0 + 2], delta[x0 + 3, j0 + 2]
    d30, d31 = delta[x0, j0 + 3], delta[x0 + 1, j0 + 3]
    d32, d33 = delta[x0 + 2, j0 + 3], delta[x0 + 3, j0 + 3]
    for k in range(a_prev.shape[1]):
        a0, a1, a2, a3 = a_prev[x0, k], a_prev[x0 + 1, k], a_prev[x0 + 2, k], a_prev[x0 + 3, k]
        dC_dw[j0, k] += a0 * d00 + a1 * d01 + a2 * d02 + a3 * d03  # eq I6, I1'', M5: a_k δ_j
        dC_dw[j0 + 1, k] += a0 * d10 + a1 * d11 + a2 * d12 + a3 * d13  # eq I6, I1'', M5
        dC_dw[j0 + 2, k] += a0 * d20 + a1 * d21 + a2 * d22 + a3 * d23  # eq I6, I1'', M5
        dC_dw[j0 + 3, k] += a0 * d30 + a1 * d31 + a2 * d32 + a3 * d33  # eq I6, I1'', M5


@kernel
def gradients(delta, a_prev, dC_dw, dC_db, delta_T, a_prev_T):
    """Mean gradients: ``∂C/∂w_jk = (1/n) Σ_x a_k δ_j`` and ``∂C/∂b_j = (1/n) Σ_x δ_j``.

    Index-form I6 with I1″ and I7 with I1‴; matrix-form M5 and M6; the mean
    over the rows is the mini-batch averaging of the matrix form's conclusion.
    ``delta_T`` and ``a_prev_T`` are scratch space for transposed copies, used
    when the batch is large enough for the dot-product tile to pay.
    """
    n, n_out = delta.shape
    n_in = a_prev.shape[1]
    inv_n = 1 / n
    if n >= TILED_GRADIENT_MIN_BATCH:
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
    # Row form for small batches: rows j of dC_dw gather a_k δ_j from each
    # example in turn (no transposes); the inner loop walks k contiguously.
    whole = n - n % TILE  # examples handled four at a time
    for t in prange((n_out + TILE - 1) // TILE):
        j0 = t * TILE
        j1 = min(j0 + TILE, n_out)
        for j in range(j0, j1):
            dC_db_j = delta.dtype.type(0)
            for x in range(n):
                dC_db_j += delta[x, j]  # eq I7, I1''', M6: ∂C/∂b_j = δ_j, summed over x
            dC_db[j] = dC_db_j * inv_n  # eq avg: mean over the mini-batch
            for k in range(n_in):
                dC_dw[j, k] = 0
        x_rest = 0
        if j1 - j0 == TILE:
            for x0 in range(0, whole, TILE):
                _add_outer_4x4(dC_dw, j0, a_prev, x0, delta)
            x_rest = whole
        for j in range(j0, j1):
            for x in range(x_rest, n):
                delta_j = delta[x, j]
                for k in range(n_in):
                    dC_dw[j, k] += a_prev[x, k] * delta_j  # eq I6, I1'', M5: ∂C/∂w_jk = a_k δ_j
            for k in range(n_in):
                dC_dw[j, k] *= inv_n  # eq avg: mean over the mini-batch


@kernel
def sgd_update(w, b, dC_dw, dC_db, eta):
    """Gradient descent: ``w_jk ← w_jk − η ∂C/∂w_jk`` and ``b_j ← b_j − η ∂C/∂b_j``."""
    n_out, n_in = w.shape
    for j in prange(n_out):
        for k in range(n_in):
            w[j, k] -= eta * dC_dw[j, k]  # eq sgd: w_jk ← w_jk − η ∂C/∂w_jk
        b[j] -= eta * dC_db[j]  # eq sgd: b_j ← b_j − η ∂C/∂b_j


# --- whole passes over a network: serial drivers that call the kernels ----------


@serial
def feedforward(weights, biases, X, out, acts):
    """Output activations for every row of ``X``, in chunks of ``acts[0].shape[0]`` rows.

    ``acts[i]`` are buffers of shape ``(chunk, sizes[i])``; ``out`` receives the
    last layer's activations, shape ``(len(X), sizes[-1])``.
    """
    n = X.shape[0]
    chunk = acts[0].shape[0]
    n_layers = len(weights)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        acts[0][:m] = X[start:start + m]
        for i in range(n_layers - 1):
            forward_layer(weights[i], biases[i], acts[i][:m], acts[i + 1][:m])
        forward_layer(weights[n_layers - 1], biases[n_layers - 1], acts[n_layers - 1][:m],
                      out[start:start + m])


@serial
def backprop(weights, biases, weights_T, nabla_w, nabla_b, ws):
    """Forward and backward pass for the mini-batch already in the workspace ``ws``.

    ``ws = (acts, Y, deltas, deltas_T, acts_T)``: ``acts[0]`` holds the inputs
    and ``Y`` the targets.  Fills ``nabla_w``/``nabla_b`` with the mean
    gradients and returns the batch's mean cost before any update.
    ``weights_T[i]`` must hold the transpose of ``weights[i]`` for ``i >= 1``.
    """
    acts, Y, deltas, deltas_T, acts_T = ws
    n_layers = len(weights)
    for i in range(n_layers):
        forward_layer(weights[i], biases[i], acts[i], acts[i + 1])
    cost = quadratic_cost(acts[n_layers], Y)
    output_error(acts[n_layers], Y, deltas[n_layers - 1])
    for i in range(n_layers - 1, 0, -1):
        hidden_error(weights_T[i], deltas[i], acts[i], deltas[i - 1])
    for i in range(n_layers):
        gradients(deltas[i], acts[i], nabla_w[i], nabla_b[i], deltas_T[i], acts_T[i])
    return cost


@serial
def train_mini_batches(weights, biases, X, Y, order, first, stop, eta,
                       weights_T, nabla_w, nabla_b, ws_full, ws_tail, batch_costs):
    """Run SGD over mini-batches ``first … stop-1`` of an epoch.

    Returns the sum over the examples seen of their cost before the update
    (divide by the number of examples for the mean), and writes each
    mini-batch's share into ``batch_costs[m]``, so that an epoch's total can
    be added up in one fixed order however the epoch was split into calls.

    Mini-batch ``m`` holds the rows ``order[m*B : (m+1)*B]`` of ``X``/``Y``,
    where ``B`` is the row count of the full workspace ``ws_full``; the last
    batch of an epoch may be shorter and then uses ``ws_tail``, sized for it.
    Both workspaces are allocated once per call, so no step allocates.
    """
    n = X.shape[0]
    batch_size = ws_full[0][0].shape[0]
    n_layers = len(weights)
    for i in range(1, n_layers):
        transpose(weights[i], weights_T[i])
    cost_sum = 0.0
    for m in range(first, stop):
        start = m * batch_size
        ws = ws_full if n - start >= batch_size else ws_tail
        acts, Y_batch = ws[0], ws[1]
        for r in range(acts[0].shape[0]):  # gather the mini-batch in shuffled order
            acts[0][r, :] = X[order[start + r], :]
            Y_batch[r, :] = Y[order[start + r], :]
        rows = acts[0].shape[0]
        batch_costs[m] = rows * backprop(weights, biases, weights_T, nabla_w, nabla_b, ws)
        cost_sum += batch_costs[m]
        for i in range(n_layers):
            sgd_update(weights[i], biases[i], nabla_w[i], nabla_b[i], eta)
            if i >= 1:
                transpose(weights[i], weights_T[i])
    return cost_sum


#: The same kernels and drivers compiled without threads, for work too small
#: to share out (chosen by :func:`loopbp.network.kernels_for`).
SERIAL = _serial_twins(globals(), [
    "forward_layer", "output_error", "transpose", "hidden_error", "gradients", "sgd_update",
    "feedforward", "backprop", "train_mini_batches",
])
