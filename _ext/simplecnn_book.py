"""Sphinx additions for the Simple CNN book (named in _config.yml under sphinx.local_extensions).

* Figures in notebook outputs get a text alternative. ``simplecnn`` writes a description of
  every matplotlib figure it draws in a notebook (its titles, axis labels and legend entries)
  into the PNG's ``Description`` text chunk; here that text becomes the image's ``alt``.
  Alt text set in the cell metadata (``mystnb: {image: {alt: ...}}``) wins.
* The sidebar's expand/collapse toggles get an accessible name. The theme writes each one as a
  ``<summary>`` holding only a chevron icon, which a screen reader announces without a name
  (axe-core: "summary-name", serious); here each gets ``aria-label="Sections of <chapter>"``.
* Bibliography entries are list items. docutils writes the reference list as
  ``<div role="list">`` whose entries have ``role="doc-biblioentry"``, a role that may not sit in
  a list (axe-core: "aria-required-children", critical); here they become ``role="listitem"``.
* Each script appears once per page. sphinx-thebe registers its configuration script twice,
  and the second copy fails in the browser with "Identifier 'THEBE_JS_URL' has already been
  declared".
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes

#: PNG text chunks read for alt text, in order of preference.
ALT_KEYS = ("Description", "Title")


def png_description(path: str | Path) -> str | None:
    """The description stored in a PNG file's text chunks, or None."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            text = getattr(image, "text", {}) or {}
    except OSError:
        return None
    for key in ALT_KEYS:
        value = str(text.get(key, "")).strip()
        if value:
            return value
    return None


def add_figure_alt_text(app, doctree) -> None:
    for image in doctree.findall(nodes.image):
        if image.get("alt") or not str(image.get("uri", "")).lower().endswith(".png"):
            continue
        candidate = image.get("candidates", {}).get("*")  # set by Sphinx: relative to the source folder
        if candidate:
            path = Path(app.srcdir) / candidate
        else:
            _, path = app.env.relfn2path(image["uri"], app.env.docname)
        description = png_description(path)
        if description:
            image["alt"] = description


def unique_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        seen, unique = set(), []
        for js in scripts:
            key = (str(getattr(js, "filename", js) or ""),  # None and "" both mean an inline script
                   tuple(sorted(getattr(js, "attributes", {}).items())))
            if key not in seen:
                seen.add(key)
                unique.append(js)
        scripts[:] = unique  # in place: later handlers may still add to this list


def label_toggles(html):
    """Give every text-less ``<summary>`` of a navigation tree an aria-label naming its chapter.

    ``html`` is a string or a BeautifulSoup tree (changed in place); the same kind is returned.
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser") if isinstance(html, str) else html
    for summary in soup.find_all("summary"):
        if summary.get_text(strip=True) or summary.get("aria-label"):
            continue
        item = summary.find_parent("li")
        link = item.find("a", recursive=False) if item is not None else None
        name = " ".join(link.get_text().split()) if link is not None else ""
        summary["aria-label"] = f"Sections of {name}" if name else "Sections"
    return str(soup) if isinstance(html, str) else soup


def accessible_nav(app, pagename, templatename, context, doctree) -> None:
    generate = context.get("generate_toctree_html")
    if generate is None or getattr(generate, "labels_toggles", False):
        return

    def generate_toctree_html(kind, *args, **kwargs):
        html = generate(kind, *args, **kwargs)
        return label_toggles(html) if hasattr(html, "find_all") or isinstance(html, str) else html

    generate_toctree_html.labels_toggles = True
    context["generate_toctree_html"] = generate_toctree_html


BIBLIOENTRY = re.compile(r'(<div class="citation"[^>]*?) role="doc-biblioentry"')


def bibliography_list_items(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body")
    if isinstance(body, str) and "doc-biblioentry" in body:
        context["body"] = BIBLIOENTRY.sub(r'\1 role="listitem"', body)


def setup(app):
    app.connect("doctree-read", add_figure_alt_text)
    app.connect("html-page-context", unique_scripts, priority=900)  # after the others
    app.connect("html-page-context", accessible_nav, priority=900)  # after the theme's
    app.connect("html-page-context", bibliography_list_items)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
