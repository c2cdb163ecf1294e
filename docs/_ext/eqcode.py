"""Sphinx extension: put each equation beside the code lines that implement it.

The equations come from :data:`loopbp.equations.EQUATIONS`; the code comes
from the modules named in :data:`loopbp.equations.MARKED_MODULES` (the kernels,
the activations, the costs) through ``literalinclude``, selected by the marker
comments (``# eq TAG: formula``) on their lines.  Nothing is pasted, so the
page follows the source.  The build fails when

* an ``eq-code`` directive names a tag that has no marker in any marked module,
* a marker names a tag that :mod:`loopbp.equations` does not know,
* some equation has no ``eq-code`` directive anywhere in the documentation, or
* some equation is in no ``concordance`` table.

Directives
----------
``.. eq-code:: TAG [TAG ...]``
    The equation (rendered math, its number in its derivation, one line of
    meaning) beside every excerpt of marked code whose markers name ``TAG``,
    each excerpt captioned with its function and file.  Option ``:whole:
    NAME [NAME ...]`` shows those functions whole instead of the short block
    around each marker.  A long formula is set on aligned lines
    (:func:`display_latex`) to fit its narrow column.
``.. kernel-source:: NAME``
    The whole function ``NAME`` (decorators included) with its marker lines
    highlighted; of kernels.py unless ``:module:`` names another marked module.
``.. all-kernels:: [MODULE]``
    Every function of a marked module (default ``loopbp.kernels``), in source
    order, marker lines highlighted.
``.. concordance::``
    The concordance table: every equation, its number in each derivation, the
    tags it shares code lines with and the functions that implement it.
    ``:only: derivations`` keeps the two derivations' equations (and the
    training steps ``avg`` and ``sgd``), ``:only: beyond`` the others.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

from loopbp.equations import BY_TAG, EQUATIONS, MARKED_MODULES, markers_in

#: The source of each marked module, relative to the documentation's source folder.
MODULE_PATHS: dict[str, str] = {
    name: "../src/" + name.replace(".", "/") + ".py" for name in MARKED_MODULES}
#: The module whose functions ``kernel-source`` and ``all-kernels`` show by default.
KERNELS = "loopbp.kernels"
KERNELS_FROM_DOCS = MODULE_PATHS[KERNELS]
#: An excerpt grows outward from a marker line while it stays this short.
EXCERPT_MAX_LINES = 10

FORM_NAMES = {"index": "Index form", "matrix": "Matrix form", "activation": "Activation",
              "cost": "Cost", "training": "Training step"}
#: Tags outside the index and matrix forms that the derivations still contain.
DERIVATION_STEPS = ("avg", "sgd")


def tag_slug(tag: str) -> str:
    """A label-safe name for a tag: ``I1'`` → ``eq-i1p``."""
    return "eq-" + tag.lower().replace("'", "p")


def in_derivations(tag: str) -> bool:
    """Whether the equation is one of the two derivations' (or their training steps)."""
    return BY_TAG[tag].form in ("index", "matrix") or tag in DERIVATION_STEPS


#: Where a formula of :data:`EQUATIONS` joins independent statements.
SEPARATORS = (r"\quad", r"\;")
#: Relations an equation's lines are aligned on (the first one of each line).
RELATIONS = (r"\leftarrow", r"\Rightarrow", "=")
#: Formulas longer than this (in LaTeX source) are broken into lines beside the code.
LONG_LATEX = 60


def _top_level(latex: str) -> list[tuple[int, str]]:
    """``(position, token)`` of every separator and relation outside braces and brackets."""
    found, depth, i = [], 0, 0
    while i < len(latex):
        char = latex[i]
        if char == "\\":
            name = latex[i:i + 1 + next((n for n, c in enumerate(latex[i + 1:])
                                         if not c.isalpha()), len(latex) - i - 1)]
            name = name if len(name) > 1 else latex[i:i + 2]
            if depth == 0 and name in SEPARATORS + RELATIONS:
                found.append((i, name))
            depth += {r"\begin": 1, r"\end": -1}.get(name, 0)  # inside environments
            i += len(name)
            continue
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
        elif char == "=" and depth == 0:
            found.append((i, "="))
        i += 1
    return found


def display_latex(latex: str) -> str:
    r"""A long formula as aligned lines, for the narrow column beside the code.

    Statements joined by ``\quad`` or ``\;`` go on lines of their own, and a
    chain ``a = b = c`` breaks before each further ``=``; the lines are aligned
    on their first relation.  A short formula, or one with nothing to break,
    stays as it is.
    """
    if len(latex) <= LONG_LATEX:
        return latex
    cuts, pieces, start = _top_level(latex), [], 0
    equals_seen = 0
    for position, token in cuts:
        if token in SEPARATORS:
            pieces.append(latex[start:position])
            start, equals_seen = position + len(token), 0
        elif token == "=":
            equals_seen += 1
            if equals_seen > 1:
                pieces.append(latex[start:position])
                start = position
    pieces.append(latex[start:])
    pieces = [piece.strip() for piece in pieces if piece.strip()]
    lines: list[str] = []
    for piece in pieces:  # a lone "⇒" leads the next line
        if lines and lines[-1] == r"\Rightarrow":
            lines[-1] = f"{lines[-1]} {piece}"
        else:
            lines.append(piece)
    if len(lines) < 2:
        return latex
    aligned = []
    for line in lines:
        relations = [pos for pos, token in _top_level(line) if token in RELATIONS]
        at = relations[0] if relations else 0
        aligned.append(f"{line[:at]}&{line[at:]}")
    return r"\begin{aligned}" + r" \\ ".join(aligned) + r"\end{aligned}"


@dataclass
class Marker:
    line: int  # 1-based line number in the module's file
    tags: list[str]
    formula: str
    function: str  # name of the top-level function holding the line
    module: str  # the module, e.g. "loopbp.activations"


@dataclass
class ModuleSource:
    """One marked module's file: its text, top-level functions and markers."""

    module: str
    path: Path
    text: str
    lines: list[str]
    markers: list[Marker]
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)

    @property
    def from_docs(self) -> str:
        """The file relative to the documentation's source folder (for literalinclude)."""
        return MODULE_PATHS[self.module]

    @property
    def filename(self) -> str:
        """The file relative to the repository root, e.g. ``src/loopbp/costs.py``."""
        return MODULE_PATHS[self.module].removeprefix("../")

    def markers_for(self, tag: str) -> list[Marker]:
        return [m for m in self.markers if tag in m.tags]


@dataclass
class Sources:
    """Every marked module, in the order of :data:`MARKED_MODULES`."""

    modules: dict[str, ModuleSource]

    def markers_for(self, tag: str) -> list[Marker]:
        return [m for source in self.modules.values() for m in source.markers_for(tag)]

    def functions_for(self, tag: str) -> list[str]:
        """Qualified names of the functions holding a marker for ``tag``, in source order."""
        return list(dict.fromkeys(f"{m.module}.{m.function}" for m in self.markers_for(tag)))

    @property
    def paths(self) -> list[Path]:
        return [source.path for source in self.modules.values()]


def read_module(srcdir: str | Path, module: str) -> ModuleSource:
    """Parse one marked module: its top-level functions and every marker in it."""
    if module not in MODULE_PATHS:
        raise ExtensionError(f"eqcode: {module!r} is not a marked module; marked modules are "
                             f"{', '.join(MARKED_MODULES)} (loopbp.equations.MARKED_MODULES)")
    path = (Path(srcdir) / MODULE_PATHS[module]).resolve()
    if not path.is_file():
        raise ExtensionError(f"eqcode: source of {module} not found at {path}")
    filename = MODULE_PATHS[module].removeprefix("../")
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    markers = []
    for number, tags, formula in markers_in(text):
        owner = next((name for name, fn in functions.items()
                      if fn.lineno <= number <= fn.end_lineno), None)
        if owner is None:
            raise ExtensionError(f"eqcode: marker on line {number} of {filename} is outside "
                                 "any function")
        unknown = [t for t in tags if t not in BY_TAG]
        if unknown:
            raise ExtensionError(f"eqcode: marker on line {number} of {filename} names "
                                 f"unknown tag(s) {unknown}; known tags are in "
                                 "loopbp.equations.EQUATIONS")
        markers.append(Marker(number, tags, formula, owner, module))
    return ModuleSource(module, path, text, text.splitlines(), markers, functions)


def read_sources(srcdir: str | Path) -> Sources:
    """Parse every module of :data:`MARKED_MODULES`."""
    return Sources({module: read_module(srcdir, module) for module in MARKED_MODULES})


def read_kernels(srcdir: str | Path) -> ModuleSource:
    """Parse kernels.py (kept for callers that want the kernels alone)."""
    return read_module(srcdir, KERNELS)


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


def excerpt_range(source: ModuleSource, marker: Marker) -> tuple[int, int]:
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


def _function_caption(source: ModuleSource, function: str) -> str:
    return f":func:`{source.module}.{function}` · ``{source.filename}``"


class _RstDirective(SphinxDirective):
    """A directive that writes reStructuredText and parses it in place."""

    def parse_rst(self, rst: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        source, _line = self.get_source_info()
        self.state.nested_parse(StringList(rst, source=source), self.content_offset, container)
        return container.children

    def sources(self) -> Sources:
        sources = read_sources(self.env.srcdir)
        for path in sources.paths:
            self.env.note_dependency(str(path))
        return sources


def function_span(function: ast.FunctionDef) -> tuple[int, int]:
    """First and last line of a function, its decorators included."""
    first = min([function.lineno] + [d.lineno for d in function.decorator_list])
    return first, function.end_lineno


def _literalinclude(source: ModuleSource, first: int, last: int, emphasize: list[int],
                    caption: str, indent: str) -> list[str]:
    # Lines by number, never :pyobject: (whether that includes the decorators
    # depends on the Sphinx version, and the highlighted lines must not shift).
    rst = [f"{indent}.. literalinclude:: /{source.from_docs}",
           f"{indent}   :language: python",
           f"{indent}   :lineno-match:",
           f"{indent}   :dedent:",
           f"{indent}   :caption: {caption}",
           f"{indent}   :lines: {first}-{last}"]
    if emphasize:
        rst.append(f"{indent}   :emphasize-lines: {','.join(map(str, emphasize))}")
    rst.append("")
    return rst


class EqCode(_RstDirective):
    """``.. eq-code:: TAG [TAG ...]`` — equations beside the code that implements them.

    The left column shows each named equation; the right column every excerpt
    of marked code whose markers name any of them, with those lines
    highlighted, from every module of :data:`MARKED_MODULES`.
    """

    required_arguments = 1
    optional_arguments = 10
    has_content = False
    option_spec: ClassVar[dict] = {"whole": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        tags = [t.strip() for t in self.arguments if t.strip()]
        for tag in tags:
            if tag not in BY_TAG:
                raise ExtensionError(f"eq-code: unknown tag {tag!r} in {self.env.docname}; "
                                     "tags are listed in loopbp.equations.EQUATIONS")
        whole = set(self.options.get("whole", "").split())
        sources = self.sources()
        known = {name for source in sources.modules.values() for name in source.functions}
        if whole - known:
            raise ExtensionError(f"eq-code: :whole: names {sorted(whole - known)}, which no "
                                 "marked module defines")
        self.env.eqcode_shown = getattr(self.env, "eqcode_shown", {})
        rst = [".. container:: eq-row", "", "   .. container:: eq-math", ""]
        excerpts: dict[tuple[str, str, int, int], set[int]] = {}
        for tag in tags:
            eq = BY_TAG[tag]
            markers = sources.markers_for(tag)
            if not markers:
                files = ", ".join(s.filename for s in sources.modules.values())
                raise ExtensionError(
                    f"eq-code: no line of {files} carries a marker for {tag!r} "
                    f"({FORM_NAMES[eq.form]} {eq.number}); the derivation page cannot show "
                    "its code")
            self.env.eqcode_shown.setdefault(tag, set()).add(self.env.docname)
            number = "" if eq.number == "—" else f" {eq.number}"
            rst += [f"      .. _{tag_slug(tag)}:", "",
                    f"      .. container:: eq-equation {tag_slug(tag)}", "",
                    f"         :eqlabel:`{FORM_NAMES[eq.form]}{number}` · tag ``{tag}``", "",
                    "         .. math::", ""]
            rst += [f"            {line}" for line in display_latex(eq.latex).splitlines()]
            rst += ["", f"         {eq.meaning}", ""]
            # One excerpt per distinct block, marker lines highlighted.
            for marker in markers:
                source = sources.modules[marker.module]
                if marker.function in whole:
                    function = source.functions[marker.function]
                    first, last = function_span(function)
                else:
                    first, last = excerpt_range(source, marker)
                key = (marker.module, marker.function, first, last)
                excerpts.setdefault(key, set()).add(marker.line)
        rst += ["   .. container:: eq-code", ""]
        module_order = {name: i for i, name in enumerate(MARKED_MODULES)}

        def order(key: tuple[str, str, int, int]) -> tuple[int, int, int]:
            module, function, first, _last = key
            functions = list(sources.modules[module].functions)
            return module_order[module], functions.index(function), first

        for key in sorted(excerpts, key=order):
            module, function, first, last = key
            source = sources.modules[module]
            emphasize = sorted(line - first + 1 for line in excerpts[key])
            where = f"line {first}" if first == last else f"lines {first}–{last}"
            caption = f"{_function_caption(source, function)}, {where}"
            rst += _literalinclude(source, first, last, emphasize, caption, "      ")
        return self.parse_rst(rst)


def _whole_function(source: ModuleSource, name: str) -> list[str]:
    first, last = function_span(source.functions[name])
    emphasize = [m.line - first + 1 for m in source.markers if m.function == name]
    return _literalinclude(source, first, last, emphasize, _function_caption(source, name), "")


class KernelSourceDirective(_RstDirective):
    """``.. kernel-source:: NAME`` — a whole function, its marker lines highlighted."""

    required_arguments = 1
    has_content = False
    option_spec: ClassVar[dict] = {"module": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0].strip()
        source = self.sources().modules.get(self.options.get("module", KERNELS).strip())
        if source is None:
            raise ExtensionError(f"kernel-source: {self.options['module']!r} is not one of "
                                 f"the marked modules {', '.join(MARKED_MODULES)}")
        if name not in source.functions:
            raise ExtensionError(f"kernel-source: {source.filename} has no function {name!r}")
        return self.parse_rst(_whole_function(source, name))


class AllKernels(_RstDirective):
    """``.. all-kernels:: [MODULE]`` — every function of a marked module, in source order."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        module = self.arguments[0].strip() if self.arguments else KERNELS
        source = self.sources().modules.get(module)
        if source is None:
            raise ExtensionError(f"all-kernels: {module!r} is not one of the marked modules "
                                 f"{', '.join(MARKED_MODULES)}")
        rst = []
        for name in source.functions:
            rst += _whole_function(source, name)
        return self.parse_rst(rst)


def _only(argument: str) -> str:
    return directives.choice(argument, ("derivations", "beyond"))


class Concordance(_RstDirective):
    """``.. concordance::`` — the table of equations, numbers, tags and code."""

    has_content = False
    option_spec: ClassVar[dict] = {"only": _only}

    def run(self) -> list[nodes.Node]:
        sources = self.sources()
        only = self.options.get("only")
        chosen = [eq for eq in EQUATIONS
                  if only is None or in_derivations(eq.tag) == (only == "derivations")]
        numbered = only != "beyond"
        header = ["Index form", "Matrix form"] if numbered else []
        header += ["Code tag", "Kind" if not numbered else None, "Equation",
                   "Implemented on the same lines as", "Code"]
        header = [h for h in header if h is not None]
        rst = [".. list-table::",
               "   :header-rows: 1",
               "   :class: concordance",
               "   :widths: auto", ""]
        rst += [("   * - " if i == 0 else "     - ") + h for i, h in enumerate(header)]
        self.env.eqcode_tabled = getattr(self.env, "eqcode_tabled", {})
        for eq in chosen:
            shared = []
            for marker in sources.markers_for(eq.tag):
                shared += [t for t in marker.tags if t != eq.tag]
            shared = list(dict.fromkeys(shared))
            functions = sources.functions_for(eq.tag)
            if not functions:
                raise ExtensionError(f"concordance: no marker for {eq.tag!r} in "
                                     f"{', '.join(s.filename for s in sources.modules.values())}")
            self.env.eqcode_tabled.setdefault(eq.tag, set()).add(self.env.docname)
            cells = []
            if numbered:
                index_no = eq.number if eq.form == "index" else ""
                matrix_no = eq.number if eq.form == "matrix" else ""
                if eq.tag == "avg":
                    matrix_no = "conclusion"
                # A leading backslash keeps "(1)" from being read as a numbered list.
                cells += [f"\\{index_no}" if index_no else "",
                          f"\\{matrix_no}" if matrix_no else ""]
            cells.append(f":ref:`{eq.tag} <{tag_slug(eq.tag)}>`")
            if not numbered:
                cells.append(FORM_NAMES[eq.form])
            cells += [f":math:`{eq.latex}`",
                      ", ".join(f":ref:`{t} <{tag_slug(t)}>`" for t in shared),
                      ", ".join(f":func:`{q.removeprefix('loopbp.')} <{q}>`"
                                for q in functions)]
            rst += [(("   * - " if i == 0 else "     - ") + cell).rstrip()
                    for i, cell in enumerate(cells)]
        rst.append("")
        return self.parse_rst(rst)


def eqlabel_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``:eqlabel:`Index form (1)``` — the small heading over an equation."""
    return [nodes.inline(rawtext, text, classes=["eq-label"])], []


def check_all_shown(app, env) -> None:
    """Fail the build when an equation is on no page or in no concordance table."""
    shown = getattr(env, "eqcode_shown", {})
    missing = [eq.tag for eq in EQUATIONS if not shown.get(eq.tag)]
    if missing:
        raise ExtensionError(f"eqcode: these equations are on no page (no eq-code directive "
                             f"names them): {', '.join(missing)}")
    tabled = getattr(env, "eqcode_tabled", {})
    if any(tabled.values()):  # a site with a concordance must list every equation in one
        untabled = [eq.tag for eq in EQUATIONS if not tabled.get(eq.tag)]
        if untabled:
            raise ExtensionError(f"eqcode: these equations are in no concordance table: "
                                 f"{', '.join(untabled)}")
    read_sources(app.srcdir)  # unknown tags in markers fail even with nothing re-read


def purge(app, env, docname) -> None:
    for attribute in ("eqcode_shown", "eqcode_tabled"):
        for docs in getattr(env, attribute, {}).values():
            docs.discard(docname)


def merge(app, env, docnames, other) -> None:
    for attribute in ("eqcode_shown", "eqcode_tabled"):
        merged = getattr(env, attribute, {})
        for tag, docs in getattr(other, attribute, {}).items():
            merged.setdefault(tag, set()).update(docs)
        setattr(env, attribute, merged)


def setup(app):
    app.add_directive("eq-code", EqCode)
    app.add_directive("kernel-source", KernelSourceDirective)
    app.add_directive("all-kernels", AllKernels)
    app.add_directive("concordance", Concordance)
    app.add_role("eqlabel", eqlabel_role)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-check-consistency", check_all_shown)
    return {"version": "2", "parallel_read_safe": True, "parallel_write_safe": True}
