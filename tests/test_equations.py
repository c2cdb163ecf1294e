"""Every numbered equation is marked in the kernels; every marker names a real equation."""

from __future__ import annotations

import importlib
import inspect

from loopbp import equations

#: (module name, its source) for every module that carries markers.
SOURCES = [(name, inspect.getsource(importlib.import_module(name)))
           for name in equations.MARKED_MODULES]


def test_every_equation_is_marked_in_the_code():
    marked = {tag for _, source in SOURCES
              for _, tags, _ in equations.markers_in(source) for tag in tags}
    missing = [eq.tag for eq in equations.EQUATIONS if eq.tag not in marked]
    assert not missing, f"equations with no marker in {equations.MARKED_MODULES}: {missing}"


def test_every_marker_names_a_real_equation():
    for module, source in SOURCES:
        for line, tags, _formula in equations.markers_in(source):
            unknown = [t for t in tags if t not in equations.BY_TAG]
            assert not unknown, f"{module} line {line} names unknown equations {unknown}"
            assert tags, f"{module} line {line} has an empty marker"


def test_each_activation_and_cost_has_its_derivative_beside_it():
    """Every f has an f′ tag and every C a δ^L tag, so each pair can be read together."""
    for eq in equations.EQUATIONS:
        if eq.form in ("activation", "cost") and not eq.tag.endswith("'"):
            assert eq.tag + "'" in equations.BY_TAG, f"{eq.tag} has no derivative tag"


def test_both_derivations_are_complete():
    index = [eq.tag for eq in equations.EQUATIONS if eq.form == "index"]
    matrix = [eq.tag for eq in equations.EQUATIONS if eq.form == "matrix"]
    assert set(index) == {f"I{i}" for i in range(1, 8)} | {"I1'", "I1''", "I1'''", "I2'"}
    assert set(matrix) == {f"M{i}" for i in range(1, 7)}


def test_marker_parser_reads_tags_and_formula():
    found = equations.markers_in("x = 1\ny += 2  # eq I5, I1', M4: Σ_j w_jk δ_j\n")
    assert found == [(2, ["I5", "I1'", "M4"], "Σ_j w_jk δ_j")]
