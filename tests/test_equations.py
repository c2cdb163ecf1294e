"""Every numbered equation is marked in the kernels; every marker names a real equation."""

from __future__ import annotations

import inspect

from loopbp import equations, kernels

SOURCE = inspect.getsource(kernels)


def test_every_equation_is_marked_in_the_kernels():
    marked = {tag for _, tags, _ in equations.markers_in(SOURCE) for tag in tags}
    missing = [eq.tag for eq in equations.EQUATIONS if eq.tag not in marked]
    assert not missing, f"equations with no marker in kernels.py: {missing}"


def test_every_marker_names_a_real_equation():
    for line, tags, _formula in equations.markers_in(SOURCE):
        unknown = [t for t in tags if t not in equations.BY_TAG]
        assert not unknown, f"kernels.py line {line} names unknown equations {unknown}"
        assert tags, f"kernels.py line {line} has an empty marker"


def test_both_derivations_are_complete():
    index = [eq.tag for eq in equations.EQUATIONS if eq.form == "index"]
    matrix = [eq.tag for eq in equations.EQUATIONS if eq.form == "matrix"]
    assert set(index) == {f"I{i}" for i in range(1, 8)} | {"I1'", "I1''", "I1'''", "I2'"}
    assert set(matrix) == {f"M{i}" for i in range(1, 7)}


def test_marker_parser_reads_tags_and_formula():
    found = equations.markers_in("x = 1\ny += 2  # eq I5, I1', M4: Σ_j w_jk δ_j\n")
    assert found == [(2, ["I5", "I1'", "M4"], "Σ_j w_jk δ_j")]
