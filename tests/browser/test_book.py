"""Every page of the built book, opened in headless Chromium with every non-local request blocked.

Each page is loaded once (in the light and in the dark colour scheme) and what the checks need is
collected then; the tests below read from that record, so one slow page load serves every check.
Pages are discovered from the built HTML, so new chapters are covered automatically.

For each page:
* it loads with no console errors, no page errors and no failed or blocked requests;
* no notebook output is an error or a traceback (other stderr output, such as a warning, is
  reported in pytest's warnings summary);
* equations are typeset by the book's own copy of MathJax, without TeX errors;
* every image loads and has a real text alternative (not just its file name);
* a notebook page has a Colab button for exactly that notebook and a working download button;
* axe-core (vendored, see the Makefile) finds no serious or critical accessibility violation,
  except the theme-level ones listed in ``AXE_EXCEPTIONS`` with their justification;
* a full-page screenshot in each colour scheme goes to test-artifacts/screenshots/, and the axe
  findings of every impact to test-artifacts/accessibility.json.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
from browser_support import (
    ARTIFACTS,
    ROOT,
    book_pages,
    built_book,
    colab_url,
    open_page,
    screenshot,
    toc_files,
)

BOOK = built_book()
PAGES = book_pages(BOOK) if BOOK else ["(book not built)"]
AXE = Path(os.environ.get("SIMPLECNN_AXE", ROOT / "_build/vendor/axe-core/axe.min.js"))

# Serious or critical axe findings accepted on purpose: (rule id, CSS selector fragment) -> reason.
# Keep this short, and only for markup the theme writes (not the course's content).
AXE_EXCEPTIONS: dict[tuple[str, str], str] = {}

COLLECT = """
async () => {
  for (const img of document.querySelectorAll('img[loading="lazy"]')) img.loading = "eager";
  await Promise.all([...document.images].map(img => img.complete ? null : img.decode().catch(() => null)));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const text = el => (el.innerText || el.textContent || "").trim();
  const maths = [...document.querySelectorAll("span.math, div.math")];
  return {
    math: maths.length,
    untypeset: maths.filter(el => !el.querySelector("mjx-container")).map(el => text(el).slice(0, 100)),
    mathErrors: [...document.querySelectorAll("mjx-merror")].map(el => el.getAttribute("data-mjx-error") || text(el)),
    images: [...document.images].map(img => ({src: img.getAttribute("src"), alt: img.getAttribute("alt"),
                                              width: img.naturalWidth})),
    errorOutputs: [...document.querySelectorAll(".cell_output .output.traceback, .cell_output .output.error")]
      .map(el => text(el).slice(0, 300)),
    stderrOutputs: [...document.querySelectorAll(".cell_output .output.stderr")].map(el => text(el).slice(0, 300)),
    colab: [...document.querySelectorAll('a[href^="https://colab.research.google.com/"]')].map(a => a.href),
    downloads: [...document.querySelectorAll("a.btn-download-source-button")].map(a => a.href),
    widgetViews: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    setupCells: [...document.querySelectorAll("div.cell")]
      .filter(cell => cell.textContent.includes('"google.colab" in sys.modules'))
      .map(cell => [...cell.querySelectorAll("pre")].some(pre => !pre.closest("details:not([open])"))),
  };
}
"""

AXE_RUN = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.map(n => n.target.join(" "))}));
}
"""


def _name(path: str) -> str:
    return path.removesuffix(".html").replace("/", "--")


@pytest.fixture(scope="module")
def visits(browser, book_url, book_dir):
    """``visits(path)``: what was seen on that page, loading it (light, then dark) the first time."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: `make vendor` fetches it")
    axe_source = AXE.read_text()
    seen: dict[str, dict] = {}

    def visit(path: str) -> dict:
        if path in seen:
            return seen[path]
        record = {}
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
            try:
                page = open_page(context, book_url)
                page.goto(book_url + path, wait_until="networkidle")
                info = page.evaluate(COLLECT)
                info["theme"] = page.evaluate("document.documentElement.dataset.theme")
                info["screenshot"] = str(screenshot(page, f"{_name(path)}--{scheme}"))
                # What the page itself did; axe (next) fetches stylesheets on its own.
                info["problems"] = page.problems.all()
                page.add_script_tag(content=axe_source)
                info["axe"] = page.evaluate(AXE_RUN)
            finally:
                context.close()
            record[scheme] = info
        seen[path] = record
        return record

    yield visit
    if seen:
        report = {path: {scheme: r[scheme]["axe"] for scheme in r} for path, r in sorted(seen.items())}
        ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS.parent / "accessibility.json").write_text(json.dumps(report, indent=1) + "\n")


def test_every_toc_entry_is_a_page(book_dir):
    pages = set(book_pages(book_dir))
    missing = [f for f in toc_files() if f + ".html" not in pages]
    assert not missing, f"in _toc.yml but not in the built book: {missing}"
    assert len(pages) >= len(toc_files())


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_cleanly(visits, path):
    for scheme, info in visits(path).items():
        assert not info["problems"], f"{path} ({scheme}): " + "\n".join(info["problems"])
        assert info["theme"] == scheme, (
            f"{path}: asked for the {scheme} scheme, the theme shows {info['theme']}"
        )


@pytest.mark.parametrize("path", PAGES)
def test_no_error_outputs(visits, path):
    info = visits(path)["light"]
    errors = info["errorOutputs"] + [
        t for t in info["stderrOutputs"] if re.search(r"Traceback|Error\b|Exception\b", t)
    ]
    assert not errors, f"{path} shows an error or a traceback:\n" + "\n".join(errors)
    for text in info["stderrOutputs"]:
        # Warnings are worth fixing but do not stop the book; pytest lists them in its summary.
        warnings.warn(f"{path} shows stderr output: {text[:200]}", UserWarning, stacklevel=1)


@pytest.mark.parametrize("path", PAGES)
def test_math_is_typeset(visits, path):
    info = visits(path)["light"]
    assert not info["untypeset"], f"{path}: equations left as raw TeX: {info['untypeset']}"
    assert not info["mathErrors"], f"{path}: TeX errors: {info['mathErrors']}"


@pytest.mark.parametrize("path", PAGES)
def test_images_load_and_have_alt_text(visits, path):
    for img in visits(path)["light"]["images"]:
        assert img["width"] > 0, f"{path}: image {img['src']} did not load"
        alt = (img["alt"] or "").strip()
        file_name = alt.lower().endswith((".png", ".jpg", ".jpeg", ".svg", ".gif")) or alt == img["src"]
        assert alt and not file_name, (
            f"{path}: image {img['src']} has no text alternative (alt={img['alt']!r}). Give matplotlib "
            "figures a title (cnnkit.plots turns titles and axis labels into alt text), or set the cell "
            "metadata mystnb: {image: {alt: ...}}; markdown images take :alt:."
        )


@pytest.mark.parametrize("path", PAGES)
def test_no_widget_outputs(visits, path):
    # A widget saved in a notebook needs a widget manager loaded from elsewhere to show anything.
    # The notebooks print one line per epoch and ask sc.train for no live progress bar.
    assert visits(path)["light"]["widgetViews"] == 0, (
        f"{path} embeds Jupyter widgets, which a static offline page cannot show; print text instead"
    )


@pytest.mark.parametrize("path", PAGES)
def test_colab_and_download_buttons(visits, path, book_url):
    info = visits(path)["light"]
    source = BOOK / "_sources" / (path.removesuffix(".html") + ".ipynb")
    if not path.startswith("notebooks/"):
        assert not info["colab"], f"{path} is not a notebook but has a Colab button"
        return
    notebook = path.removesuffix(".html") + ".ipynb"
    assert (ROOT / notebook).is_file()
    assert info["colab"] == [colab_url(notebook)], info["colab"]
    assert info["downloads"] == [urljoin(book_url + path, "../_sources/" + notebook)], info["downloads"]
    assert source.is_file() and json.loads(source.read_text())["cells"], f"{source} is not a notebook"


@pytest.mark.parametrize("path", PAGES)
def test_setup_cell_is_collapsed(visits, path):
    setup_cells = visits(path)["light"]["setupCells"]
    if path.startswith("notebooks/"):
        assert setup_cells == [False], f"{path}: expected one collapsed Colab setup cell, got {setup_cells}"
    else:
        assert setup_cells == []


@pytest.mark.parametrize("path", PAGES)
def test_accessibility(visits, path):
    failures = []
    for scheme, info in visits(path).items():
        for v in info["axe"]:
            if v["impact"] not in ("serious", "critical"):
                continue
            nodes = [
                n
                for n in v["nodes"]
                if not any(v["id"] == rule and frag in n for rule, frag in AXE_EXCEPTIONS)
            ]
            if nodes:
                failures.append(f"{scheme}: {v['id']} ({v['impact']}): {v['help']}: {nodes[:5]}")
    assert not failures, f"{path}:\n" + "\n".join(failures)


def test_figures_have_an_opaque_background(book_dir):
    """A transparent figure would show dark-on-dark on the dark theme; the course style makes
    figures white (see cnnkit.plots.use_style)."""
    from PIL import Image

    see_through = []
    shown = {
        (book_dir / page).parent / unquote(src)
        for page in book_pages(book_dir)
        for src in _parse(book_dir / page).images
        if src.lower().endswith(".png")
    }
    for path in sorted(p.resolve() for p in shown if "_images" in p.parts):
        with Image.open(path) as image:
            rgba = image.convert("RGBA")
            corners = [(0, 0), (rgba.width - 1, 0), (0, rgba.height - 1), (rgba.width - 1, rgba.height - 1)]
            if any(rgba.getpixel(c)[3] < 255 for c in corners):
                see_through.append(path.name)
    assert not see_through, f"figures with a transparent background: {see_through}"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        for key in ("href", "src"):
            if tag in ("a", "img", "link", "script") and attrs.get(key):
                self.hrefs.append(attrs[key])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_internal_links_resolve(book_dir):
    """Every local link, image and script of every page points at a file that exists, and every
    #fragment at an element of that page (a broken cross-reference shows up here)."""
    broken = []
    parsed: dict[Path, _Links] = {}
    for path in book_pages(book_dir):
        page = book_dir / path
        links = parsed.setdefault(page, _parse(page))
        for href in links.hrefs:
            url = urlparse(href)
            if url.scheme or href.startswith("//"):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path}: {href} (no such file)")
            elif url.fragment and target.suffix == ".html":
                ids = parsed.setdefault(target, _parse(target)).ids
                if unquote(url.fragment) not in ids:
                    broken.append(f"{path}: {href} (no element with that id)")
    assert not broken, "\n".join(broken)
