"""The pictures drawn by chapters/figures/make_figures.py, as the built book shows them.

* Each picture is on its page, loads, and has a real text alternative and a caption: the pictures
  that teach one idea on the page that teaches it (the first chapter, chapters 1, 2 and 5 to 8 and
  appendix B); the map of the network and the training loop on whichever pages of _toc.yml use them
  (a picture that no page shows is a failure too).
* Each picture paints an opaque white background over its whole area first, so that its dark text
  stays readable on the dark theme whatever the theme does to images.
* Full-page screenshots of the pages with pictures (chapters 1, 2 and 5 to 8, appendix B, and
  the first chapter when _toc.yml has it), in the light and the dark scheme, and one screenshot of each picture, go
  to test-artifacts/screenshots/ with names starting with ``figures--``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from browser_support import ROOT, open_page, screenshot, screenshot_element, toc_files

FIGURES_DIR = ROOT / "chapters" / "figures"

#: The pictures and the page that teaches each idea; None: the page that uses it, found in the
#: sources of _toc.yml.
PICTURES: dict[str, str | None] = {
    "batch_tensor.svg": "chapters/00-whole-picture",
    "softmax_bars.svg": "chapters/00-whole-picture",
    "conv1d_flip_slide.svg": "chapters/01-convolution",
    "conv2d_padding_stride.svg": "chapters/01-convolution",
    "conv_dilation.svg": "chapters/01-convolution",
    "conv_multichannel.svg": "chapters/01-convolution",
    "pooling_max_avg.svg": "chapters/02-pooling",
    "pooling_gradient.svg": "chapters/02-pooling",
    "receptive_field.svg": "chapters/02-pooling",
    "conv_input_gradient.svg": "chapters/05-optimization",
    "one_cycle.svg": "chapters/05-optimization",
    "dropout_mask.svg": "chapters/06-regularization",
    "batchnorm_stats.svg": "chapters/06-regularization",
    "loss_curves.svg": "chapters/07-simple-cnn-mnist",
    "area_averaging.svg": "chapters/08-inside-the-model",
    "memory_layout.svg": "chapters/B-training-fast",
    "float_formats.svg": "chapters/B-training-fast",
    "network_map.svg": None,
    "training_loop.svg": None,
}

#: Pages photographed in both colour schemes; the first chapter only when _toc.yml lists it.
SCREENSHOT_PAGES = [
    "chapters/00-whole-picture",
    "chapters/01-convolution",
    "chapters/02-pooling",
    "chapters/05-optimization",
    "chapters/06-regularization",
    "chapters/07-simple-cnn-mnist",
    "chapters/08-inside-the-model",
    "chapters/B-training-fast",
]
OPTIONAL_PAGES = {"chapters/00-whole-picture"}

COLLECT = """
async () => {
  for (const img of document.querySelectorAll('img[loading="lazy"]')) img.loading = "eager";
  await Promise.all([...document.images].map(img => img.complete ? null : img.decode().catch(() => null)));
  return [...document.images].map(img => {
    const figure = img.closest("figure");
    const caption = figure ? figure.querySelector("figcaption") : null;
    return {src: img.getAttribute("src") || "", alt: img.getAttribute("alt"), width: img.naturalWidth,
            shown: img.getBoundingClientRect().width,
            caption: caption ? (caption.innerText || caption.textContent || "").trim() : null};
  });
}
"""


def _source(page: str) -> Path | None:
    for suffix in (".md", ".ipynb"):
        path = ROOT / (page + suffix)
        if path.is_file():
            return path
    return None


def _pages_showing(figure: str) -> list[str]:
    """The pages of _toc.yml whose source uses ``figure``."""
    pages = []
    for page in toc_files():
        source = _source(page)
        if source is not None and f"figures/{figure}" in source.read_text(encoding="utf-8"):
            pages.append(page)
    return pages


def _expected() -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for figure, page in PICTURES.items():
        pages = [page] if page else _pages_showing(figure)
        pairs += [(figure, p) for p in pages] or [(figure, None)]
    return pairs


def _name(page: str) -> str:
    return page.replace("/", "--")


def _stem(src: str) -> str:
    return src.rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def visits(browser, book_url):
    """``visits(page)``: the images of that page in the light and the dark scheme, loading it
    (and saving its screenshots) the first time."""
    seen: dict[str, dict] = {}

    def visit(page: str) -> dict:
        if page in seen:
            return seen[page]
        record = {}
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
            try:
                tab = open_page(context, book_url)
                tab.goto(f"{book_url}{page}.html", wait_until="networkidle")
                images = tab.evaluate(COLLECT)
                theme = tab.evaluate("document.documentElement.dataset.theme")
                shot = screenshot(tab, f"figures--{_name(page)}--{scheme}")
                pictures = {}
                for img in images:
                    if _stem(img["src"]) in PICTURES:
                        figure = _stem(img["src"])
                        locator = tab.locator(f'img[src$="/{figure}"]').first
                        name = f"figures--{figure.removesuffix('.svg')}--{scheme}"
                        pictures[figure] = str(screenshot_element(locator, name))
            finally:
                context.close()
            record[scheme] = {"images": images, "theme": theme, "screenshot": shot, "pictures": pictures}
        seen[page] = record
        return record

    return visit


def test_every_picture_is_drawn_by_the_script():
    script = (FIGURES_DIR / "make_figures.py").read_text(encoding="utf-8")
    for figure in PICTURES:
        assert (FIGURES_DIR / figure).is_file(), f"{figure} is missing: run make figures"
        assert f'"{figure}"' in script, f"make_figures.py does not draw {figure}"


@pytest.mark.parametrize("figure", PICTURES)
def test_picture_has_an_opaque_white_background(figure):
    """matplotlib draws the figure's background first, as the path of ``patch_1``: it must be
    white, without transparency, and cover the whole picture."""
    svg = ET.parse(FIGURES_DIR / figure).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    _, _, width, height = (float(v) for v in svg.get("viewBox").split())
    first = svg.find("svg:g[@id='figure_1']/svg:g", ns)
    assert first is not None and first.get("id") == "patch_1", f"{figure}: no background patch first"
    path = first.find("svg:path", ns)
    style = path.get("style", "").replace(" ", "")
    assert "fill:#ffffff" in style and "opacity" not in style, f"{figure}: background is {style!r}"
    numbers = [float(v) for v in re.findall(r"-?[\d.]+", path.get("d"))]
    xs, ys = numbers[0::2], numbers[1::2]
    assert min(xs) <= 0 and max(xs) >= width and min(ys) <= 0 and max(ys) >= height, (
        f"{figure}: the background does not cover the picture"
    )


@pytest.mark.parametrize(("figure", "page"), _expected())
def test_picture_is_on_its_page(visits, figure, page):
    if page is None:
        pytest.fail(f"{figure} is drawn, but no page of _toc.yml shows it")
    for scheme, info in visits(page).items():
        found = [img for img in info["images"] if _stem(img["src"]) == figure]
        assert found, f"{page} ({scheme}) does not show {figure}"
        for img in found:
            assert img["width"] > 0 and img["shown"] > 0, f"{page} ({scheme}): {figure} did not load"
            alt = " ".join((img["alt"] or "").split())
            assert alt and alt != img["src"] and not alt.lower().endswith(".svg"), (
                f"{page}: {figure} has no text alternative (alt={img['alt']!r}); give the figure :alt:"
            )
            assert len(alt.split()) >= 8, f"{page}: the alt text of {figure} says too little: {alt!r}"
            assert img["caption"], f"{page}: {figure} has no caption"


@pytest.mark.parametrize("page", SCREENSHOT_PAGES)
def test_screenshots_light_and_dark(visits, page):
    if page not in toc_files():
        if page in OPTIONAL_PAGES:
            pytest.skip(f"{page} is not in _toc.yml")
        pytest.fail(f"{page} is not in _toc.yml")
    record = visits(page)
    for scheme, info in record.items():
        assert info["theme"] == scheme, (
            f"{page}: asked for the {scheme} scheme, the theme shows {info['theme']}"
        )
        assert Path(info["screenshot"]).stat().st_size > 0
