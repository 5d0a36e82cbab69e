"""Helpers for the browser tests (imported by the test modules in this folder)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import yaml
from book_files import toc_files  # noqa: F401  (re-exported for the browser tests)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"


def built_book() -> Path | None:
    """The built book's html folder: $SIMPLECNN_BOOK_HTML, else _build/html."""
    env = os.environ.get("SIMPLECNN_BOOK_HTML")
    candidates = [Path(env)] if env else [ROOT / "_build/html"]
    return next((c for c in candidates if (c / "index.html").is_file()), None)


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/ and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def watch_errors(page) -> list[str]:
    """Uncaught errors of ``page`` with their stacks (register it before the page loads)."""
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(f"{err.message}\n{err.stack or ''}"))
    return errors


def screenshot_element(locator, name: str) -> Path:
    """A screenshot of one element under test-artifacts/screenshots/ (the window is made tall
    enough that the page's sticky header does not cover it)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = locator.page
    page.set_viewport_size({"width": 1280, "height": 2400})
    locator.scroll_into_view_if_needed()
    path = ARTIFACTS / f"{name}.png"
    locator.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})
    return path


def book_pages(book_dir: Path) -> list[str]:
    """Every page of the built book, as paths relative to its html folder ('intro.html', ...).

    Found from the HTML files themselves, so a new chapter is covered without touching the tests.
    Left out: Sphinx's own helper files (under folders starting with '_') and index.html, which
    only redirects to the landing page.
    """
    return sorted(
        p.relative_to(book_dir).as_posix()
        for p in book_dir.rglob("*.html")
        if not any(part.startswith("_") for part in p.relative_to(book_dir).parts)
        and p.relative_to(book_dir).as_posix() != "index.html"
    )


def repository(root: Path = ROOT) -> tuple[str, str, str]:
    """(owner, name, branch) of the repository named in _config.yml."""
    repo = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    owner, name = urlparse(repo["url"]).path.strip("/").split("/")[:2]
    return owner, name, repo.get("branch", "main")


def colab_url(notebook: str, root: Path = ROOT) -> str:
    """The Colab address of a notebook of this repository ('notebooks/07-simple-cnn-mnist.ipynb')."""
    owner, name, branch = repository(root)
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/{notebook}"


class PageProblems:
    """What went wrong while a page was open: console errors, page errors, failed or blocked requests."""

    def __init__(self):
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.failed_requests: list[str] = []
        self.blocked_requests: list[str] = []

    def all(self) -> list[str]:
        return (
            [f"console: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"failed request: {m}" for m in self.failed_requests]
            + [f"blocked non-local request: {m}" for m in self.blocked_requests]
        )


def open_page(context, book_url):
    """A new page in ``context`` whose non-local requests are blocked and whose console errors,
    page errors and failed requests are recorded in ``page.problems``."""
    problems = PageProblems()

    def route(r):
        if r.request.url.startswith(book_url) or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            problems.blocked_requests.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("console", lambda msg: msg.type == "error" and problems.console_errors.append(msg.text))
    pg.on("pageerror", lambda err: problems.page_errors.append(str(err)))
    pg.on(
        "requestfailed",
        lambda req: (
            req.url.startswith(book_url) and problems.failed_requests.append(f"{req.url} ({req.failure})")
        ),
    )
    pg.on(
        "response",
        lambda resp: (
            resp.status >= 400 and problems.failed_requests.append(f"{resp.url} (HTTP {resp.status})")
        ),
    )
    pg.problems = problems
    return pg
