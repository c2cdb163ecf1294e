"""No BLAS on loopbp's own paths: the work is the compiled loops, not matrix products.

The NumPy matrix form in :mod:`loopbp.reference` (the test oracle and the
benchmarks' peer) is the one module allowed to multiply matrices.  Besides
keeping the loops honest, a BLAS call anywhere on a training or inference
path wakes OpenBLAS's threads, which spin for a while on the cores the next
kernels want (under asv this once halved a ``predict_proba``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import loopbp

PACKAGE = Path(loopbp.__file__).resolve().parent
ALLOWED = {"reference.py"}
#: NumPy functions that hand their work to BLAS.
BLAS_FUNCTIONS = {"dot", "matmul", "inner", "vdot", "tensordot", "outer", "kron"}


def blas_uses(tree: ast.AST) -> list[str]:
    """``np.dot(...)``-style calls, ``np.linalg`` uses and ``@`` products in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.MatMult):
            found.append(f"line {node.lineno}: @")
        if isinstance(node, ast.Attribute):
            if node.attr in BLAS_FUNCTIONS and isinstance(node.value, ast.Name) \
                    and node.value.id in ("np", "numpy"):
                found.append(f"line {node.lineno}: np.{node.attr}")
            if node.attr == "linalg":
                found.append(f"line {node.lineno}: np.linalg")
    return found


def test_the_checker_finds_each_kind_of_blas_call():
    source = "a = np.dot(x, y)\nb = x @ y\nc = np.linalg.norm(x)\nx @= y\nd = numpy.vdot(x, y)\n"
    assert len(blas_uses(ast.parse(source))) == 5
    assert blas_uses(ast.parse("e = np.einsum('jk,jk->', w, w)\nf = x * y\n")) == []


@pytest.mark.parametrize("path", sorted(p.name for p in PACKAGE.glob("*.py")
                                        if p.name not in ALLOWED))
def test_module_calls_no_blas(path):
    uses = blas_uses(ast.parse((PACKAGE / path).read_text(encoding="utf-8")))
    assert uses == [], f"{path} multiplies matrices through BLAS: {uses}"
