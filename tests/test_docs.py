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
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from loopbp.equations import BY_TAG, EQUATIONS, MARKED_MODULES, markers_in

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
KATEX = DOCS / "node_modules" / "katex" / "dist" / "katex.min.js"
#: Each marked module's file, relative to the repository root.
MODULE_FILES = {name: "src/" + name.replace(".", "/") + ".py" for name in MARKED_MODULES}

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


CAPTION_FILE = re.compile(r"\bsrc/loopbp/\w+\.py\b")


def captioned_blocks(page: Element) -> list[tuple[str, Element]]:
    """``(caption text, pre)`` for every captioned code block of a page."""
    blocks = []
    for wrapper in page.find_all("div", cls="literal-block-wrapper"):
        captions = wrapper.find_all(cls="code-block-caption")
        pres = wrapper.find_all("pre")
        if captions and pres:
            blocks.append((" ".join(captions[0].text().split()), pres[0]))
    return blocks


def test_code_is_pulled_from_the_source(derivation):
    """Every excerpt's lines are its file's lines at the numbers shown, in all marked modules."""
    sources = {path: (ROOT / path).read_text(encoding="utf-8").splitlines()
               for path in MODULE_FILES.values()}
    checked = dict.fromkeys(sources, 0)
    for caption, pre in captioned_blocks(derivation):
        if not pre.find_all(cls="linenos"):
            continue
        named = CAPTION_FILE.findall(caption)
        assert len(named) == 1, f"the excerpt captioned {caption!r} does not name its file"
        path = named[0]
        assert path in sources, f"{caption!r} names {path}, which is not a marked module"
        module = next(m for m, f in MODULE_FILES.items() if f == path)
        assert f"{module}." in caption, f"{caption!r} does not name a function of {module}"
        for line in pre.text().split("\n"):
            m = re.match(r"\s*(\d+)\s?(.*)$", line)
            if not m or not m[2].strip():
                continue
            assert m[2].strip() == sources[path][int(m[1]) - 1].strip(), f"{path}: {line}"
            checked[path] += 1
    assert checked["src/loopbp/kernels.py"] > 50
    for path, count in checked.items():
        assert count > 10, f"no excerpt of {path} on the derivation page"


def shown_lines(pre: Element) -> tuple[list[int], set[int]]:
    """The source line numbers a code block shows, and those it highlights."""
    shown = [int(n.text()) for n in pre.find_all(cls="linenos") if n.text().strip().isdigit()]
    highlighted = {int(n.text()) for hll in pre.find_all(cls="hll")
                   for n in hll.find_all(cls="linenos") if n.text().strip().isdigit()}
    return shown, highlighted


def test_highlighted_lines_are_the_marked_lines(derivation):
    """Beside an equation, exactly the lines marked with its tags are highlighted; in the
    whole functions at the end, exactly the lines that carry any marker."""
    markers = {path: {n: tags for n, tags, _f in
                      markers_in((ROOT / path).read_text(encoding="utf-8"))}
               for path in MODULE_FILES.values()}
    rows = derivation.find_all(cls="eq-row")
    in_rows = {id(pre) for row in rows for pre in row.find_all("pre")}
    checked = 0
    for row in rows:
        tags = {box.text().split("tag", 1)[1].split()[0]
                for box in row.find_all(cls="eq-equation")}
        assert tags <= set(BY_TAG), tags
        for caption, pre in captioned_blocks(row):
            path = CAPTION_FILE.findall(caption)[0]
            shown, highlighted = shown_lines(pre)
            expected = {n for n in shown if set(markers[path].get(n, ())) & tags}
            assert highlighted == expected, f"{caption}: highlighted {sorted(highlighted)}"
            checked += 1
    for caption, pre in captioned_blocks(derivation):
        if id(pre) in in_rows:
            continue
        path = CAPTION_FILE.findall(caption)[0]
        shown, highlighted = shown_lines(pre)
        assert highlighted == {n for n in shown if n in markers[path]}, caption
        checked += 1
    assert checked > 60


def test_excerpts_come_from_every_marked_module(derivation):
    """Beside the equations, each marked module shows the lines whose markers name them."""
    seen: dict[str, set[str]] = {path: set() for path in MODULE_FILES.values()}
    for row in derivation.find_all(cls="eq-row"):
        for caption, pre in captioned_blocks(row):
            for path in CAPTION_FILE.findall(caption):
                for line in pre.find_all(cls="hll"):
                    for _n, tags, _formula in markers_in(line.text()):
                        seen[path].update(tags)
    for path in MODULE_FILES.values():
        text = (ROOT / path).read_text(encoding="utf-8")
        marked = {tag for _n, tags, _f in markers_in(text) for tag in tags}
        assert marked, f"{path} carries no marker"
        assert marked <= seen[path], (
            f"tags marked in {path} but shown from no excerpt of it: {sorted(marked - seen[path])}")


def test_concordance_lists_every_equation(site):
    """The notation page's concordance tables hold every tag once, linked to the derivation."""
    page = parse((site / "notation.html").read_text(encoding="utf-8"))
    tables = page.find_all("table", cls="concordance")
    assert len(tables) == 2, "expected the derivations' table and the table beyond them"
    linked = []
    for table in tables:
        for a in table.find_all("a"):
            href = a.attrs.get("href", "")
            if href.startswith("derivation.html#"):
                linked.append(href.split("#", 1)[1])
    rows = [tr for table in tables for tr in table.find_all("tr")[1:]]
    assert len(rows) == len(EQUATIONS)
    first_links = []
    for tr in rows:
        refs = [a.attrs["href"].split("#", 1)[1] for a in tr.find_all("a")
                if a.attrs.get("href", "").startswith("derivation.html#")]
        assert refs, " ".join(tr.text().split())
        first_links.append(refs[0])
    assert sorted(first_links) == sorted(tag_slug(eq.tag) for eq in EQUATIONS)
    assert {tag_slug(eq.tag) for eq in EQUATIONS} <= set(linked)


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


def build_small_site(tmp_path: Path, index: str,
                     edit: dict[str, Callable[[str], str]] | None = None,
                     ) -> subprocess.CompletedProcess:
    """Build a one-page site with the eqcode extension over a copy of the marked modules.

    ``edit`` maps a module name to a function of its source, applied (and
    required to change something) to that module's copy.
    """
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("the docs extra is not installed (sphinx missing)")
    for module, path in MODULE_FILES.items():
        text = (ROOT / path).read_text(encoding="utf-8")
        if edit and module in edit:
            changed = edit[module](text)
            assert changed != text, f"the edit of {path} changes nothing"
            text = changed
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\nextensions = ['eqcode']\n",
        encoding="utf-8")
    (docs / "index.rst").write_text(f"Page\n====\n\n{index}\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(docs),
         str(tmp_path / "html")], capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL)


def every_equation() -> str:
    return "\n".join(f".. eq-code:: {eq.tag}\n" for eq in EQUATIONS)


def test_small_site_builds(tmp_path):
    """The control for the tests below: every equation on a page, markers intact, builds."""
    result = build_small_site(tmp_path, every_equation() + "\n.. concordance::\n")
    assert result.returncode == 0, result.stdout + result.stderr


def without_tag(source: str, tag: str) -> str:
    """``source`` with ``tag`` taken out of every marker (a marker left empty is no marker)."""
    lines = source.splitlines(keepends=True)
    for number, tags, formula in markers_in(source):
        if tag in tags:
            line = lines[number - 1]
            rest = [t for t in tags if t != tag]
            comment = f"# eq {', '.join(rest)}: {formula}" if rest else f"# was: {formula}"
            lines[number - 1] = line[:line.rindex("#")] + comment + "\n"
    return "".join(lines)


@pytest.mark.parametrize(("module", "tag"), [
    ("loopbp.kernels", "I5"), ("loopbp.activations", "tanh'"), ("loopbp.costs", "loglik'")])
def test_build_fails_when_a_marker_disappears(tmp_path, module, tag):
    """Taking an equation's tag out of the markers that carry it stops the build."""
    holders = [m for m, p in MODULE_FILES.items()
               if any(tag in tags for _n, tags, _f in
                      markers_in((ROOT / p).read_text(encoding="utf-8")))]
    assert module in holders, f"{tag} is not marked in {module}"
    result = build_small_site(tmp_path, every_equation(),
                              {m: lambda text: without_tag(text, tag) for m in holders})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"carries a marker for {tag!r}" in output, output


def test_build_fails_on_a_marker_with_an_unknown_tag(tmp_path):
    """A marker naming a tag that loopbp.equations does not know stops the build."""
    assert "softplus" not in BY_TAG
    result = build_small_site(tmp_path, every_equation(), {
        "loopbp.costs": lambda text: re.sub(r"#\s*eq\s+loglik:", "# eq loglik, softplus:", text)})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "src/loopbp/costs.py" in output and "unknown tag(s) ['softplus']" in output, output


def test_build_fails_when_an_equation_is_on_no_page(tmp_path):
    """An equation that no eq-code directive shows stops the build, and is named."""
    index = "\n".join(f".. eq-code:: {eq.tag}\n" for eq in EQUATIONS if eq.tag != "relu'")
    result = build_small_site(tmp_path, index)
    assert result.returncode != 0
    assert "on no page" in result.stdout + result.stderr
    assert "relu'" in result.stdout + result.stderr


def test_build_fails_when_an_equation_is_in_no_concordance(tmp_path):
    """With concordance tables on the site, an equation in none of them stops the build."""
    result = build_small_site(tmp_path, every_equation() + "\n.. concordance::\n   :only: beyond\n")
    assert result.returncode != 0
    assert "in no concordance table" in result.stdout + result.stderr


def test_getting_started_runs(tmp_path, monkeypatch):
    """The Python examples of the getting-started page run, in order, as written."""
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("the data extra is not installed (scikit-learn ships the digits)")
    text = (DOCS / "getting_started.rst").read_text(encoding="utf-8")
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text, re.MULTILINE)
    assert len(blocks) >= 4
    code = "\n".join("\n".join(line[3:] for line in block.splitlines()) for block in blocks)
    code = code.replace("eta=3.0, test_data", "eta=3.0, progress=False, test_data")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "getting_started.rst", "exec"), namespace)
    net = namespace["net"]
    assert net.cost == "log_likelihood" and net.activations[-1] == "softmax"
    assert namespace["history"].stopped_early in (True, False)


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
