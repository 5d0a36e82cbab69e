"""The kernel and pooling explorers stay interactive in the built book: offline, with no Python
kernel. Each test opens a notebook page, finds the explorer, changes its controls like a reader
would, checks that the displayed result changes and equals what cnnkit.scratch computes in
Python, and saves screenshots to test-artifacts/screenshots/."""

from __future__ import annotations

import json

import numpy as np
from browser_support import screenshot, screenshot_element, watch_errors

from cnnkit.explorers import KERNEL_SLIDERS, POOLING_SLIDERS
from cnnkit.kernels import KERNEL_PRESETS, parse_kernel
from cnnkit.scratch import conv2d, conv_output_size, conv_window, pool2d, pool_window

PAGES = {"kernel": "notebooks/01-convolution.html", "pooling": "notebooks/02-pooling.html"}


def _ours(page, errors: list[str], url: str) -> list[str]:
    """The problems caused by the explorers: errors raised in the page's inline scripts (their
    stack points at the page itself, while the theme's scripts live in _static/) or naming the
    explorers, and console errors naming them."""
    marks = ("SimpleCNNExplorers", "scnn", "explorer")
    found = [e for e in errors if url in e or any(m in e for m in marks)]
    found += [c for c in page.problems.console_errors if any(m in c for m in marks)]
    found += [
        r
        for r in page.problems.failed_requests + page.problems.blocked_requests
        if any(m in r for m in marks)
    ]
    return found


def _open(page, book_url: str, kind: str):
    errors = watch_errors(page)
    url = book_url + PAGES[kind]
    page.goto(url, wait_until="networkidle")
    demos = page.locator(f".scnn-{kind}-explorer")
    assert demos.count() == 1, f"expected one {kind} explorer on {PAGES[kind]}, found {demos.count()}"
    demo = demos.first
    demo.scroll_into_view_if_needed()
    page.wait_for_function("el => el.simplecnnState !== undefined", arg=demo.element_handle(), timeout=10_000)
    assert "could not start" not in demo.inner_text()
    return demo, errors, url


def _state(demo) -> dict:
    return demo.evaluate("el => el.simplecnnState")


def _data(demo) -> dict:
    return json.loads(demo.locator("script.scnn-data").text_content())


def _picture(demo, cls: str) -> str:
    return demo.locator(f"canvas.{cls}").evaluate("c => c.toDataURL()")


def _set_range(demo, label: str, value: int):
    """Move the range slider labelled ``label`` the way a drag does (input event)."""
    slider = demo.get_by_role("slider", name=label, exact=True)
    slider.evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(value)
    )


def _ranges(demo, labels: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """(lowest, highest, value) of each range slider, by name: ``labels`` maps names to labels."""
    return {
        name: tuple(
            demo.get_by_role("slider", name=label, exact=True).evaluate("e => [+e.min, +e.max, +e.value]")
        )
        for name, label in labels.items()
    }


def _select(demo, label: str):
    return demo.get_by_role("combobox", name=label, exact=True)


def _click_cell(demo, cls: str, row: int, col: int, n_rows: int, n_cols: int):
    box = demo.locator(f"canvas.{cls}").bounding_box()
    demo.locator(f"canvas.{cls}").click(
        position={"x": (col + 0.5) * box["width"] / n_cols, "y": (row + 0.5) * box["height"] / n_rows}
    )


def test_kernel_explorer_is_live_in_the_book(page, book_url):
    demo, errors, url = _open(page, book_url, "kernel")
    data = _data(demo)
    digits = [np.array(d["pixels"]) / 255 for d in data["digits"]]
    presets = {p["name"]: parse_kernel(p["text"]) for p in data["presets"]}
    formula = demo.locator(".scnn-formula")

    def expect(digit, kernel, stride, padding):
        state = _state(demo)
        assert (state["digit"], state["stride"], state["padding"]) == (digit, stride, padding)
        assert np.allclose(state["kernel"], kernel)
        assert np.allclose(state["output"], conv2d(digits[digit], kernel, stride=stride, padding=padding))
        size = conv_output_size(28, len(kernel), stride, padding)
        assert formula.inner_text().endswith(f"= {size} → the feature map is {size}×{size}.")
        return state

    expect(0, presets["identity"], 1, 0)
    assert _ranges(demo, {"stride": "Stride", "padding": "Padding"}) == KERNEL_SLIDERS  # as in JupyterLab
    screenshot(page, "convolution-page")
    picture = _picture(demo, "scnn-output")

    # a preset from the menu
    _select(demo, "Kernel").select_option(label="Sobel x (vertical edges)")
    expect(0, presets["Sobel x (vertical edges)"], 1, 0)
    assert demo.locator("textarea").input_value() == KERNEL_PRESETS["Sobel x (vertical edges)"]
    assert _picture(demo, "scnn-output") != picture, "the output map did not change"

    # stride and padding sliders, another digit
    _set_range(demo, "Stride", 2)
    expect(0, presets["Sobel x (vertical edges)"], 2, 0)
    assert "⌊25 / 2⌋ + 1 = 13" in formula.inner_text()
    _set_range(demo, "Padding", 1)
    expect(0, presets["Sobel x (vertical edges)"], 2, 1)
    picture = _picture(demo, "scnn-output")
    _select(demo, "Digit").select_option(index=3)
    expect(3, presets["Sobel x (vertical edges)"], 2, 1)
    assert _picture(demo, "scnn-output") != picture

    # a typed 5x5 kernel
    typed = "0 0 0 0 0\n0 0 0 0 0\n0 0 0 0 0\n0 0 0 0 0\n0 0 0 0 2"
    demo.locator("textarea").fill(typed)
    expect(3, parse_kernel(typed), 2, 1)
    assert _select(demo, "Kernel").input_value() == "typed"
    assert demo.locator(".scnn-message").inner_text() == ""

    # malformed input: a clear message, the last good kernel stays
    before = _state(demo)["output"]
    demo.locator("textarea").fill("1 2 3\n4 5\n6 7 8")
    message = demo.locator(".scnn-message")
    assert "row 2 has 2 numbers" in message.inner_text() and message.is_visible()
    demo.locator("textarea").fill("alert(1) 0 0\n0 0 0\n0 0 0")
    assert "'alert(1)' is not a number" in message.inner_text()
    assert _state(demo)["output"] == before

    # the window being computed: click an output cell
    demo.locator("textarea").fill(KERNEL_PRESETS["Gaussian blur 3×3"])
    state = expect(3, presets["Gaussian blur 3×3"], 2, 1)
    n = len(state["output"])
    _click_cell(demo, "scnn-output", 7, 5, n, n)
    state = _state(demo)
    assert (state["row"], state["col"]) == (7, 5)
    assert np.isclose(state["windowSum"], state["output"][7][5])
    win = conv_window(digits[3], presets["Gaussian blur 3×3"], 2, 1, 7, 5)
    assert np.isclose(state["windowSum"], win["value"])
    assert "output[7, 5]" in demo.locator(".scnn-window").inner_text()

    screenshot_element(demo, "kernel-explorer")
    screenshot(page, "convolution-page-after")
    assert not _ours(page, errors, url), _ours(page, errors, url)


def test_pooling_explorer_is_live_in_the_book(page, book_url):
    demo, errors, url = _open(page, book_url, "pooling")
    data = _data(demo)
    maps = [np.array(m["values"], dtype=float) / m["scale"] for m in data["maps"]]
    formula = demo.locator(".scnn-formula")

    def expect(source, size, stride, mode):
        state = _state(demo)
        assert (state["map"], state["size"], state["stride"], state["mode"]) == (source, size, stride, mode)
        assert np.allclose(state["output"], pool2d(maps[source], size, stride, mode))
        assert formula.inner_text().endswith(
            f"= {len(state['output'])} → the pooled map is {len(state['output'])}×{len(state['output'][0])}."
        )
        return state

    assert expect(0, 2, 2, "max")["output"] == [[6, 5], [3, 7]]
    assert _ranges(demo, {"window": "Window", "stride": "Stride"}) == POOLING_SLIDERS  # as in JupyterLab
    screenshot(page, "pooling-page")
    picture = _picture(demo, "scnn-output")

    _select(demo, "Pooling").select_option("average")
    assert expect(0, 2, 2, "average")["output"] == [[3.5, 2], [1.5, 3.5]]
    assert _picture(demo, "scnn-output") != picture, "the pooled map did not change"

    _set_range(demo, "Window", 3)
    _set_range(demo, "Stride", 1)
    _select(demo, "Pooling").select_option("max")
    assert expect(0, 3, 1, "max")["output"] == [[6, 6], [6, 7]]

    picture = _picture(demo, "scnn-input")
    _select(demo, "Map").select_option(label="digit 7")
    source = [m["name"] for m in data["maps"]].index("digit 7")
    _set_range(demo, "Window", 2)
    _set_range(demo, "Stride", 2)
    state = expect(source, 2, 2, "max")
    assert len(state["output"]) == 14
    assert _picture(demo, "scnn-input") != picture

    _click_cell(demo, "scnn-output", 5, 8, 14, 14)
    state = _state(demo)
    assert (state["row"], state["col"]) == (5, 8)
    assert np.isclose(state["windowValue"], pool_window(maps[source], 2, 2, "max", 5, 8)["value"])
    assert "output[5, 8]" in demo.locator(".scnn-window").inner_text()

    screenshot_element(demo, "pooling-explorer")
    screenshot(page, "pooling-page-after")
    assert not _ours(page, errors, url), _ours(page, errors, url)


TYPED = [
    "1 2 3\n4 5 6\n7 8 9",
    "[1, 2, 3]; [4,5,6]; [7, 8, 9]",
    "1/9 1/9 1/9\n1/9 1/9 1/9\n1/9 1/9 1/9",
    "-0.5 +.5 1e-1\n0 0 0\n0 0 0",
    "",
    "1 2\n3 4",
    "1 2 3\n4 5\n6 7 8",
    "nan 0 0\n0 0 0\n0 0 0",
    "Infinity 0 0\n0 0 0\n0 0 0",
    "1e999 0 0\n0 0 0\n0 0 0",
    "1/0 0 0\n0 0 0\n0 0 0",
    "0x10 0 0\n0 0 0\n0 0 0",
    "1_000 0 0\n0 0 0\n0 0 0",
    "2**8 0 0\n0 0 0\n0 0 0",
    "alert(1) 0 0\n0 0 0\n0 0 0",
    "1 0 0 0 0\n0 1 0 0 0\n0 0 1 0 0\n0 0 0 1 0\n0 0 0 0 1",
]


def test_javascript_reads_typed_kernels_like_python(page, book_url):
    """The page and Python accept the same typed kernels, with the same values and messages."""
    page.goto(book_url + PAGES["kernel"], wait_until="networkidle")
    results = page.evaluate(
        """texts => texts.map(text => {
             try { return {ok: true, value: SimpleCNNExplorers.parseKernel(text, [3, 5], 1e6)}; }
             catch (err) { return {ok: false, message: err.message}; } })""",
        TYPED,
    )
    for text, result in zip(TYPED, results):
        try:
            expected = parse_kernel(text)
        except ValueError as err:
            assert not result["ok"], f"the page accepted {text!r}, Python refuses it: {err}"
            assert result["message"] == str(err), text
        else:
            assert result["ok"], f"the page refused {text!r}: {result.get('message')}"
            assert np.allclose(result["value"], expected), text
