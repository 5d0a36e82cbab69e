"""Fixtures for tests of the built book in a real browser (headless Chromium, offline).

The book must already be built (`make test` runs `make book` first). The tests
serve it on 127.0.0.1 and open it in Chromium driven by Playwright, with every request that does
not go to that local server blocked, so a page that needs a CDN fails here as it would for an
offline reader.

Settings (environment variables):
  SIMPLECNN_BOOK_HTML       the built book's html folder (`make test` sets it to _build/html, the
                            book's one build; without it, browser_support.built_book looks for one)
  SIMPLECNN_CHROMIUM        the Chromium binary (default: chromium on PATH, /usr/bin/chromium)
  SIMPLECNN_REQUIRE_BROWSER=1  fail instead of skip when Chromium is missing (CI sets it)
  SIMPLECNN_AXE             axe-core's axe.min.js (default: _build/vendor/axe-core/axe.min.js, from `make vendor`)

Screenshots of every page (light and dark) and the axe-core findings go to test-artifacts/.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
from browser_support import built_book, open_page


def _chromium() -> str | None:
    env = os.environ.get("SIMPLECNN_CHROMIUM")
    if env:
        return env
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    )


def _unavailable(reason: str):
    if os.environ.get("SIMPLECNN_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def book_dir() -> Path:
    found = built_book()
    if found is None:
        _unavailable("the book is not built: run `make book` first")
    return found


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output readable
        pass


@pytest.fixture(scope="session")
def book_url(book_dir):
    """Base URL of the book served on 127.0.0.1 (a free port), ending in '/'."""
    handler = functools.partial(_QuietHandler, directory=str(book_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    exe = _chromium()
    if exe is None:
        _unavailable("Chromium not found: `apt-get install chromium` or set SIMPLECNN_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (it is in requirements.txt)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=exe,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, book_url):
    """A fresh page whose non-local requests are blocked; ``page.problems`` lists what went wrong."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield open_page(context, book_url)
    context.close()
