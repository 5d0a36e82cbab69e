"""The built book opens in a real browser, offline, without errors."""

from browser_support import screenshot


def test_landing_page_loads_offline(page, book_url):
    page.goto(book_url + "intro.html", wait_until="networkidle")
    assert "Simple CNN" in page.title()
    assert page.locator("h1").first.inner_text().startswith("Simple CNN")
    screenshot(page, "intro")
    assert not page.problems.failed_requests, page.problems.failed_requests
