"""Sphinx configuration for loopbp's documentation.

Build with ``docs/build.sh`` (installs KaTeX from ``docs/package-lock.json``,
then runs Sphinx with warnings as errors).  Math is rendered to HTML at build
time by KaTeX running in Node; the pages ship KaTeX's stylesheet and fonts in
``_static/katex`` and load nothing from another host.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import sphinxcontrib.katex
from sphinx.errors import ConfigError

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT / "src"))  # document the checkout's loopbp
sys.path.insert(0, str(DOCS / "_ext"))

import loopbp  # noqa: E402

project = "loopbp"
author = "the loopbp authors"
copyright = "the loopbp authors, MIT License"
version = release = loopbp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinxcontrib.katex",
    "eqcode",
    "handnumbers",
]

exclude_patterns = ["_build", "node_modules", "Thumbs.db", ".DS_Store", "README.md"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["loopbp.css"]
html_theme = "furo"
html_title = f"loopbp {release}"
html_show_sourcelink = False
html_theme_options = {"navigation_with_keys": True}
smartquotes_action = "qe"  # keep "--option" as typed; curly quotes and ellipses only
pygments_style = "default"
pygments_dark_style = "monokai"

# --- API reference -------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc "Parameters" sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False
nitpicky = False

# --- math: KaTeX, rendered at build time ----------------------------------------
KATEX_DIST = DOCS / "node_modules" / "katex" / "dist"
if not (KATEX_DIST / "katex.min.js").is_file():
    raise ConfigError(
        "KaTeX is not installed: run `npm ci` in docs/ first (docs/build.sh does it)")

# Ship KaTeX's stylesheet and fonts with the site (docs/_static/katex is not committed).
_katex_static = DOCS / "_static" / "katex"
_katex_static.mkdir(parents=True, exist_ok=True)
shutil.copy2(KATEX_DIST / "katex.min.css", _katex_static / "katex.min.css")
shutil.copytree(KATEX_DIST / "fonts", _katex_static / "fonts", dirs_exist_ok=True)

katex_prerender = True
katex_js_path = str(KATEX_DIST / "katex.min.js")  # used by Node at build time only
katex_css_path = "katex/katex.min.css"
# A formula KaTeX cannot parse fails the build instead of showing red source.
sphinxcontrib.katex.KATEX_DEFAULT_OPTIONS = {"throwOnError": True}


def _start_katex_server(cls, rundir, timeout):
    """Start the KaTeX render server and connect once it listens.

    Replaces sphinxcontrib-katex's start-up, which gives up when the socket
    file exists but the server is not yet accepting (seen on busy machines)
    and then leaves the Node process running.  Here connecting is retried
    until ``timeout``, and the process is stopped if it never answers.
    """
    socket_path = rundir / "katex.sock"
    process = subprocess.Popen(cls.build_command(socket=socket_path),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=rundir)
    deadline = time.monotonic() + max(timeout, 30.0)
    while True:
        if process.poll() is not None:
            raise sphinxcontrib.katex.KaTeXError(
                f"the KaTeX render server (node) exited with status {process.returncode}")
        if socket_path.is_socket():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(socket_path))
                return process, sock
            except (ConnectionRefusedError, FileNotFoundError):
                sock.close()
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise sphinxcontrib.katex.KaTeXServer.timeout_error(timeout)
        time.sleep(0.01)


if hasattr(sphinxcontrib.katex, "KaTeXServer"):
    sphinxcontrib.katex.KaTeXServer.start_server_process = classmethod(_start_katex_server)
