"""Sphinx extension: put each numbered equation beside the kernel lines that implement it.

The equations come from :data:`loopbp.equations.EQUATIONS`; the code comes
from ``src/loopbp/kernels.py`` through ``literalinclude``, selected by the
marker comments (``# eq TAG: formula``) on its lines.  Nothing is pasted, so
the page follows the source.  The build fails when

* an ``eq-code`` directive names a tag that has no marker in the kernels,
* a marker names a tag that :mod:`loopbp.equations` does not know, or
* some equation has no ``eq-code`` directive anywhere in the documentation.

Directives
----------
``.. eq-code:: TAG``
    The equation (rendered math, its number in its derivation, one line of
    meaning) beside every excerpt of kernel code whose markers name ``TAG``.
``.. kernel-source:: NAME``
    The whole kernel ``NAME`` (``:pyobject:``) with its marker lines highlighted.
``.. all-kernels::``
    Every function of kernels.py, in source order, marker lines highlighted.
``.. concordance::``
    The concordance table: every equation, its number in each derivation, the
    tags it shares code lines with and the kernels that implement it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

from loopbp.equations import BY_TAG, EQUATIONS, markers_in

#: The kernels' source, relative to the documentation's source folder.
KERNELS_FROM_DOCS = "../src/loopbp/kernels.py"
#: An excerpt grows outward from a marker line while it stays this short.
EXCERPT_MAX_LINES = 10

FORM_NAMES = {"index": "Index form", "matrix": "Matrix form", "training": "Training step"}


def tag_slug(tag: str) -> str:
    """A label-safe name for a tag: ``I1'`` → ``eq-i1p``."""
    return "eq-" + tag.lower().replace("'", "p")


@dataclass
class Marker:
    line: int  # 1-based line number in kernels.py
    tags: list[str]
    formula: str
    function: str  # name of the top-level function holding the line


@dataclass
class KernelSource:
    path: Path
    text: str
    lines: list[str]
    markers: list[Marker]
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)

    def markers_for(self, tag: str) -> list[Marker]:
        return [m for m in self.markers if tag in m.tags]

    def kernels_for(self, tag: str) -> list[str]:
        return list(dict.fromkeys(m.function for m in self.markers_for(tag)))


def read_kernels(srcdir: str | Path) -> KernelSource:
    """Parse kernels.py: its top-level functions and every marker in it."""
    path = (Path(srcdir) / KERNELS_FROM_DOCS).resolve()
    if not path.is_file():
        raise ExtensionError(f"eqcode: kernel source not found at {path}")
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    markers = []
    for number, tags, formula in markers_in(text):
        owner = next((name for name, fn in functions.items()
                      if fn.lineno <= number <= fn.end_lineno), None)
        if owner is None:
            raise ExtensionError(f"eqcode: marker on line {number} of kernels.py is outside "
                                 "any function")
        unknown = [t for t in tags if t not in BY_TAG]
        if unknown:
            raise ExtensionError(f"eqcode: marker on line {number} of kernels.py names "
                                 f"unknown tag(s) {unknown}; known tags are in "
                                 "loopbp.equations.EQUATIONS")
        markers.append(Marker(number, tags, formula, owner))
    return KernelSource(path, text, text.splitlines(), markers, functions)


def _block_spans(function: ast.FunctionDef, lines: list[str]) -> list[tuple[int, int, int]]:
    """Every block inside ``function``: ``(first line, last line, depth)``.

    A block is a loop (header to end) or one branch of an ``if`` (its ``if`` or
    ``else`` line to the end of that branch).
    """
    spans = []

    def walk(body: list[ast.stmt], depth: int) -> None:
        for stmt in body:
            if isinstance(stmt, ast.For | ast.While):
                spans.append((stmt.lineno, stmt.end_lineno, depth))
                walk(stmt.body, depth + 1)
            elif isinstance(stmt, ast.If):
                spans.append((stmt.lineno, stmt.body[-1].end_lineno, depth))
                walk(stmt.body, depth + 1)
                if stmt.orelse:
                    first = stmt.orelse[0].lineno - 1
                    while first > stmt.body[-1].end_lineno and not (
                            lines[first - 1].strip().startswith(("else", "elif"))):
                        first -= 1
                    spans.append((first, stmt.orelse[-1].end_lineno, depth))
                    walk(stmt.orelse, depth + 1)

    walk(function.body, 0)
    return spans


def excerpt_range(source: KernelSource, marker: Marker) -> tuple[int, int]:
    """The lines to show for a marker: the largest short block around it.

    Starting from the marker's own statement, take enclosing blocks (loops, if
    branches) outward while they stay within :data:`EXCERPT_MAX_LINES` lines.
    """
    function = source.functions[marker.function]
    enclosing = sorted(
        (span for span in _block_spans(function, source.lines)
         if span[0] <= marker.line <= span[1]),
        key=lambda span: -span[2])
    first = last = marker.line
    for start, end, _depth in enclosing:
        if end - start + 1 > EXCERPT_MAX_LINES:
            break
        first, last = start, end
    return first, last


class _RstDirective(SphinxDirective):
    """A directive that writes reStructuredText and parses it in place."""

    def parse_rst(self, rst: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        source, _line = self.get_source_info()
        self.state.nested_parse(StringList(rst, source=source), self.content_offset, container)
        return container.children

    def kernels(self) -> KernelSource:
        source = read_kernels(self.env.srcdir)
        self.env.note_dependency(str(source.path))
        return source


def _literalinclude(function: str | None, first: int | None, last: int | None,
                    emphasize: list[int], caption: str, indent: str) -> list[str]:
    rst = [f"{indent}.. literalinclude:: /{KERNELS_FROM_DOCS}",
           f"{indent}   :language: python",
           f"{indent}   :lineno-match:",
           f"{indent}   :dedent:",
           f"{indent}   :caption: {caption}"]
    if function is not None:
        rst.append(f"{indent}   :pyobject: {function}")
    else:
        rst.append(f"{indent}   :lines: {first}-{last}")
    if emphasize:
        rst.append(f"{indent}   :emphasize-lines: {','.join(map(str, emphasize))}")
    rst.append("")
    return rst


class EqCode(_RstDirective):
    """``.. eq-code:: TAG [TAG ...]`` — equations beside the code that implements them.

    The left column shows each named equation; the right column every excerpt
    of kernel code whose markers name any of them, with those lines highlighted.
    """

    required_arguments = 1
    optional_arguments = 10
    has_content = False

    def run(self) -> list[nodes.Node]:
        tags = [t.strip() for t in self.arguments if t.strip()]
        for tag in tags:
            if tag not in BY_TAG:
                raise ExtensionError(f"eq-code: unknown tag {tag!r} in {self.env.docname}; "
                                     "tags are listed in loopbp.equations.EQUATIONS")
        source = self.kernels()
        self.env.eqcode_shown = getattr(self.env, "eqcode_shown", {})
        rst = [".. container:: eq-row", "", "   .. container:: eq-math", ""]
        excerpts: dict[tuple[str, int, int], set[int]] = {}
        for tag in tags:
            eq = BY_TAG[tag]
            markers = source.markers_for(tag)
            if not markers:
                raise ExtensionError(
                    f"eq-code: no line of src/loopbp/kernels.py carries a marker for {tag!r} "
                    f"({FORM_NAMES[eq.form]} {eq.number}); the derivation page cannot show "
                    "its code")
            self.env.eqcode_shown.setdefault(tag, set()).add(self.env.docname)
            number = "" if eq.number == "—" else f" {eq.number}"
            rst += [f"      .. _{tag_slug(tag)}:", "",
                    f"      .. container:: eq-equation {tag_slug(tag)}", "",
                    f"         :eqlabel:`{FORM_NAMES[eq.form]}{number}` · tag ``{tag}``", "",
                    "         .. math::", ""]
            rst += [f"            {line}" for line in eq.latex.splitlines()]
            rst += ["", f"         {eq.meaning}", ""]
            # One excerpt per distinct block, marker lines highlighted.
            for marker in markers:
                first, last = excerpt_range(source, marker)
                excerpts.setdefault((marker.function, first, last), set()).add(marker.line)
        rst += ["   .. container:: eq-code", ""]
        order = {name: i for i, name in enumerate(source.functions)}
        for (function, first, last), lines in sorted(
                excerpts.items(), key=lambda item: (order[item[0][0]], item[0][1])):
            emphasize = sorted(line - first + 1 for line in lines)
            caption = f":func:`loopbp.kernels.{function}`, lines {first}–{last}"
            rst += _literalinclude(None, first, last, emphasize, caption, "      ")
        return self.parse_rst(rst)


class KernelSourceDirective(_RstDirective):
    """``.. kernel-source:: NAME`` — a whole kernel, its marker lines highlighted."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0].strip()
        source = self.kernels()
        function = source.functions.get(name)
        if function is None:
            raise ExtensionError(f"kernel-source: src/loopbp/kernels.py has no function {name!r}")
        # :pyobject: starts at the ``def`` line (decorators are left out).
        start = function.lineno
        emphasize = [m.line - start + 1 for m in source.markers if m.function == name]
        caption = f":func:`loopbp.kernels.{name}`"
        return self.parse_rst(_literalinclude(name, None, None, emphasize, caption, ""))


class AllKernels(_RstDirective):
    """``.. all-kernels::`` — every function of kernels.py in source order, in full."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        source = self.kernels()
        rst = []
        for name, function in source.functions.items():
            emphasize = [m.line - function.lineno + 1 for m in source.markers
                         if m.function == name]
            rst += _literalinclude(name, None, None, emphasize,
                                   f":func:`loopbp.kernels.{name}`", "")
        return self.parse_rst(rst)


class Concordance(_RstDirective):
    """``.. concordance::`` — the table of equations, numbers, tags and kernels."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        source = self.kernels()
        rst = [".. list-table::",
               "   :header-rows: 1",
               "   :class: concordance",
               "   :widths: auto", "",
               "   * - Index form",
               "     - Matrix form",
               "     - Code tag",
               "     - Equation",
               "     - Implemented on the same lines as",
               "     - Kernels"]
        for eq in EQUATIONS:
            shared = []
            for marker in source.markers_for(eq.tag):
                shared += [t for t in marker.tags if t != eq.tag]
            shared = list(dict.fromkeys(shared))
            kernels = source.kernels_for(eq.tag)
            if not kernels:
                raise ExtensionError(f"concordance: no marker for {eq.tag!r} in kernels.py")
            index_no = eq.number if eq.form == "index" else ""
            matrix_no = eq.number if eq.form == "matrix" else ""
            if eq.form == "training":
                matrix_no = "conclusion" if eq.tag == "avg" else ""
            # A leading backslash keeps "(1)" from being read as a numbered list.
            rst += [f"   * - \\{index_no}" if index_no else "   * -",
                    f"     - \\{matrix_no}" if matrix_no else "     -",
                    f"     - :ref:`{eq.tag} <{tag_slug(eq.tag)}>`",
                    f"     - :math:`{eq.latex}`",
                    "     - " + ", ".join(f":ref:`{t} <{tag_slug(t)}>`" for t in shared),
                    "     - " + ", ".join(f":func:`~loopbp.kernels.{k}`" for k in kernels)]
        rst.append("")
        return self.parse_rst(rst)


def eqlabel_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``:eqlabel:`Index form (1)``` — the small heading over an equation."""
    return [nodes.inline(rawtext, text, classes=["eq-label"])], []


def check_all_shown(app, env) -> None:
    """Fail the build when an equation is not shown by any ``eq-code`` directive."""
    shown = getattr(env, "eqcode_shown", {})
    missing = [eq.tag for eq in EQUATIONS if not shown.get(eq.tag)]
    if missing:
        raise ExtensionError(f"eqcode: these equations are on no page: {', '.join(missing)}")
    read_kernels(app.srcdir)  # unknown tags in markers fail even with nothing re-read


def purge(app, env, docname) -> None:
    for docs in getattr(env, "eqcode_shown", {}).values():
        docs.discard(docname)


def merge(app, env, docnames, other) -> None:
    shown = getattr(env, "eqcode_shown", {})
    for tag, docs in getattr(other, "eqcode_shown", {}).items():
        shown.setdefault(tag, set()).update(docs)
    env.eqcode_shown = shown


def setup(app):
    app.add_directive("eq-code", EqCode)
    app.add_directive("kernel-source", KernelSourceDirective)
    app.add_directive("all-kernels", AllKernels)
    app.add_directive("concordance", Concordance)
    app.add_role("eqlabel", eqlabel_role)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-check-consistency", check_all_shown)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
