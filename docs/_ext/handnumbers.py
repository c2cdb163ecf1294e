"""Sphinx extension: the numbers of the worked example, read from ``hand_example.json``.

The page "A network by hand" never types a computed number.  It writes
placeholders such as ``<<a2_1>>`` inside ``hand-math`` blocks, or the role
``:hand:`cost```, and this extension fills them in from the same file that
``tests/test_hand_example.py`` checks loopbp against.

Names: a list entry gets its 1-based position (``z2_1``), a matrix entry its
row and column (``w3_12`` is w^3_{12}); scalars keep their name (``eta``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

DATA_FILE = "hand_example.json"
PLACEHOLDER = re.compile(r"<<([A-Za-z0-9_]+)>>")


def flatten(values: dict) -> dict[str, float]:
    """``{"w3": [[0.4, 0.45]]}`` → ``{"w3_11": 0.4, "w3_12": 0.45}``."""
    flat = {}
    for name, value in values.items():
        if isinstance(value, list):
            for i, entry in enumerate(value, start=1):
                if isinstance(entry, list):
                    for k, item in enumerate(entry, start=1):
                        flat[f"{name}_{i}{k}"] = item
                else:
                    flat[f"{name}_{i}"] = entry
        else:
            flat[name] = value
    return flat


def load(srcdir: str | Path) -> dict[str, float]:
    data = json.loads((Path(srcdir) / DATA_FILE).read_text(encoding="utf-8"))
    return flatten({**data["given"], **data["expected"]})


def show(value: float) -> str:
    """Six significant digits, the way the page prints every number."""
    return f"{value:.6g}"


def fill(text: str, numbers: dict[str, float], where: str) -> str:
    def replace(match: re.Match) -> str:
        key = match[1]
        if key not in numbers:
            raise ExtensionError(f"handnumbers: {where} names {key!r}, which {DATA_FILE} "
                                 "does not hold")
        return show(numbers[key])

    return PLACEHOLDER.sub(replace, text)


class HandMath(SphinxDirective):
    """``.. hand-math::`` — display math whose ``<<name>>`` placeholders become numbers."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(str(Path(self.env.srcdir) / DATA_FILE))
        numbers = load(self.env.srcdir)
        latex = fill("\n".join(self.content), numbers, self.env.docname)
        node = nodes.math_block(latex, latex, nowrap=False, number=None,
                                docname=self.env.docname)
        self.set_source_info(node)
        return [node]


def hand_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``:hand:`cost``` — one number from the data file, as text."""
    env = inliner.document.settings.env
    env.note_dependency(str(Path(env.srcdir) / DATA_FILE))
    numbers = load(env.srcdir)
    key = text.strip()
    if key not in numbers:
        raise ExtensionError(f"handnumbers: :hand:`{key}` is not in {DATA_FILE}")
    return [nodes.inline(rawtext, show(numbers[key]), classes=["hand-number"])], []


def setup(app):
    app.add_directive("hand-math", HandMath)
    app.add_role("hand", hand_role)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
