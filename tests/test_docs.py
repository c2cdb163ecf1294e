"""The documentation site: it builds, shows every equation beside its code, renders offline.

The site is built once per test session (Sphinx with warnings as errors, as
``docs/build.sh`` does) into a temporary folder.  The tests skip, saying why,
when the ``docs`` extra, Node/npm or Chromium are missing.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from loopbp.equations import EQUATIONS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
KATEX = DOCS / "node_modules" / "katex" / "dist" / "katex.min.js"

pytestmark = pytest.mark.slow


def tag_slug(tag: str) -> str:
    """The anchor the derivation page gives a tag (as docs/_ext/eqcode.py makes it)."""
    return "eq-" + tag.lower().replace("'", "p")


# --- a small DOM, enough to walk the built pages --------------------------------


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Element | str] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None) -> list[Element]:
        return [e for e in self.iter()
                if (tag is None or e.tag == tag) and (cls is None or cls in e.classes)]

    def text(self, skip=lambda e: False) -> str:
        if skip(self):
            return ""
        return "".join(c if isinstance(c, str) else c.text(skip) for c in self.children)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(text: str) -> Element:
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def hidden_from_view(element: Element) -> bool:
    """Parts of a page a reader does not see: scripts, styles, KaTeX's MathML copy."""
    return (element.tag in ("script", "style", "head", "annotation", "math")
            or "katex-mathml" in element.classes)


# --- the build, once per session ------------------------------------------------


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    for module in ("sphinx", "sphinxcontrib.katex", "numpydoc", "furo"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the docs extra is not installed ({module} missing): "
                        "pip install -e '.[docs]'")
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed; the docs render math with KaTeX at build time")
    if not KATEX.is_file():
        if shutil.which("npm") is None:
            pytest.skip("KaTeX is not installed in docs/node_modules and npm is missing")
        subprocess.run(["npm", "ci", "--prefix", str(DOCS), "--no-audit", "--no-fund"],
                       check=True, timeout=600)
    out = tmp_path_factory.mktemp("docs")
    html_dir = out / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(out / "doctrees"), str(DOCS), str(html_dir)],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"docs build failed:\n{result.stdout}\n{result.stderr}"
    return html_dir


@pytest.fixture(scope="session")
def derivation(site) -> Element:
    return parse((site / "derivation.html").read_text(encoding="utf-8"))


# --- the derivation page ---------------------------------------------------------


@pytest.mark.parametrize("eq", EQUATIONS, ids=[eq.tag for eq in EQUATIONS])
def test_equation_beside_its_code(derivation, eq):
    """Each equation is rendered math in a row whose other column holds its marked code."""
    slug = tag_slug(eq.tag)
    boxes = [e for e in derivation.find_all(cls="eq-equation") if slug in e.classes
             or e.attrs.get("id") == slug]
    assert boxes, f"{eq.tag} ({eq.form} {eq.number}) is not on the derivation page"
    box = boxes[0]
    assert box.find_all(cls="katex"), f"{eq.tag} is not rendered by KaTeX"
    assert f"tag {eq.tag}" in " ".join(box.text().split())

    row = box.parent
    while row is not None and "eq-row" not in row.classes:
        row = row.parent
    assert row is not None, f"{eq.tag} is not inside a side-by-side row"
    code_columns = [c for c in row.children if isinstance(c, Element) and "eq-code" in c.classes]
    assert code_columns, f"{eq.tag} has no code column beside it"
    blocks = code_columns[0].find_all("pre")
    assert blocks, f"{eq.tag} has no code beside it"
    marker = re.compile(r"#\s*eq\s+([^:]*):")
    highlighted = [line for pre in blocks for line in pre.find_all(cls="hll")]
    tagged = [line for line in highlighted
              if (m := marker.search(line.text())) and eq.tag in
              [t.strip() for t in m[1].split(",")]]
    assert tagged, f"no highlighted line beside {eq.tag} carries its marker"


def test_code_is_pulled_from_the_source(derivation):
    """Every excerpt's lines are the kernel source's lines at the numbers shown."""
    source = (ROOT / "src" / "loopbp" / "kernels.py").read_text(encoding="utf-8").splitlines()
    checked = 0
    for pre in derivation.find_all("pre"):
        numbers = pre.find_all(cls="linenos")
        if not numbers:
            continue
        text = pre.text()
        for line in text.split("\n"):
            m = re.match(r"\s*(\d+)\s?(.*)$", line)
            if not m or not m[2].strip():
                continue
            assert m[2].strip() == source[int(m[1]) - 1].strip(), line
            checked += 1
    assert checked > 50


def test_no_resource_from_another_host(site):
    """Scripts, stylesheets, images and fonts all come from the site itself."""
    loaders = {"script": "src", "link": "href", "img": "src", "iframe": "src",
               "source": "src", "video": "src", "audio": "src", "embed": "src"}
    remote = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
    pages = sorted(site.glob("*.html"))
    assert pages
    for page in pages:
        for element in parse(page.read_text(encoding="utf-8")).iter():
            attr = loaders.get(element.tag)
            if attr and remote.match(element.attrs.get(attr, "")):
                pytest.fail(f"{page.name} loads {element.attrs[attr]} from another host")
    for css in site.glob("_static/**/*.css"):
        for url in re.findall(r"url\(([^)]*)\)", css.read_text(encoding="utf-8")):
            assert not remote.match(url.strip("'\" ")), f"{css.name} loads {url}"
            if "fonts/" in url:
                font = (css.parent / url.strip("'\" ").split("?")[0])
                assert font.is_file(), f"{css.name} needs {url}, which the site lacks"
    assert (site / "_static" / "katex" / "katex.min.css").is_file()


def test_worked_example_shows_the_data_file(site):
    """The by-hand page prints the numbers of docs/hand_example.json."""
    import json

    data = json.loads((DOCS / "hand_example.json").read_text(encoding="utf-8"))
    page = parse((site / "by_hand.html").read_text(encoding="utf-8"))
    shown = " ".join(page.text(lambda e: e.tag in ("script", "style", "head")).split())
    for name in ("cost", "a3", "delta3", "delta2", "w2_new"):
        value = data["expected"][name]
        while isinstance(value, list):
            value = value[0]
        assert f"{value:.6g}" in shown, f"{name} = {value:.6g} is not on the page"


def test_build_fails_when_a_marker_disappears(tmp_path):
    """Removing the marker of an equation from the kernels stops the docs build."""
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("the docs extra is not installed (sphinx missing)")
    kernels = (ROOT / "src" / "loopbp" / "kernels.py").read_text(encoding="utf-8")
    stripped = re.sub(r"#\s*eq\s+I3:", "# was:", kernels)
    assert stripped != kernels
    (tmp_path / "src" / "loopbp").mkdir(parents=True)
    (tmp_path / "src" / "loopbp" / "kernels.py").write_text(stripped, encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\nextensions = ['eqcode']\n",
        encoding="utf-8")
    (docs / "index.rst").write_text("Page\n====\n\n.. eq-code:: I3\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(docs),
         str(tmp_path / "html")], capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "carries a marker for 'I3'" in result.stdout + result.stderr


# --- the browser check -------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    log: list[tuple[str, int]]

    def log_request(self, code="-", size="-"):
        self.log.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format, *args):
        pass


@pytest.fixture
def served_site(site):
    log: list[tuple[str, int]] = []
    handler = type("Handler", (_QuietHandler,), {"log": log})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    binary = next((shutil.which(name) for name in ("chromium", "chromium-browser")
                   if shutil.which(name)), None)
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="loopbp-chromium-") as profile:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--virtual-time-budget=10000", *args],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_browser_renders_the_derivation(served_site, tmp_path):
    """Headless Chromium shows the derivation page with its math typeset, offline."""
    base, log = served_site
    url = f"{base}/derivation.html"
    dom = chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)

    rendered = page.find_all(cls="katex-html")
    assert len(rendered) >= len(EQUATIONS), "the equations were not rendered"
    visible = page.text(hidden_from_view)
    for raw in ("\\sum", "\\frac", "\\partial", "\\sigma", "\\mathbf", "$$", "\\(", "\\["):
        assert raw not in visible, f"raw TeX {raw!r} is visible on the page"
    assert "Index form (1)" in visible and "Matrix form (6)" in visible

    screenshot = tmp_path / "derivation.png"
    shot = chromium("--hide-scrollbars", "--window-size=1440,2200",
                    f"--screenshot={screenshot}", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    print(f"\nscreenshot of the derivation page: {screenshot}")

    requested = dict(log)
    failed = [(path, code) for path, code in log if code >= 400 and path != "/favicon.ico"]
    assert not failed, f"requests that failed: {failed}"
    assert any("katex.min.css" in path for path in requested), "KaTeX's stylesheet was not loaded"
    assert any("/fonts/KaTeX_" in path for path in requested), "no KaTeX font was loaded"
