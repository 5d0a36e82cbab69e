"""The training lab in a real JupyterLab, in headless Chromium.

A JupyterLab server (the pinned version of requirements.txt) serves a notebook that holds the
cell of chapter 7's notebook that shows the lab. The test opens it as a reader does, runs the
cell in a kernel, and checks that JupyterLab's rendering of the HTML output starts the lab: it
becomes ready, Start trains (the count of steps grows), Pause pauses. Screenshots of the lab in
JupyterLab's light and dark themes and at phone width go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_support import ARTIFACTS, ROOT, open_page

pytestmark = pytest.mark.browser

TOKEN = "simplecnn-browser-test"
NOTEBOOK = ROOT / "notebooks" / "07-simple-cnn-mnist.ipynb"


def _lab_cell() -> str:
    """The source of notebook 07's cell that shows the training lab."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    found = [s for s in sources if "traininglab.training_lab()" in s]
    assert len(found) == 1, f"expected one cell that shows the lab in {NOTEBOOK.name}, found {len(found)}"
    return found[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server on a free local port, with its own settings, serving one notebook."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "notebooks"
    root.mkdir()
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "lab", "metadata": {},
                   "outputs": [], "source": _lab_cell()}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    (root / "lab.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    state = base / "state"  # no settings or workspaces of the machine's user, none left behind
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(state / "config"),
        JUPYTER_DATA_DIR=str(state / "data"),  # the kernel is this environment's own python3
        JUPYTERLAB_SETTINGS_DIR=str(state / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
    )
    news = state / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no news toast
    port = _free_port()
    log = (base / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (base / "server.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        try:  # the server shuts its kernels down first
            urllib.request.urlopen(
                urllib.request.Request(f"{url}/api/shutdown?token={TOKEN}", method="POST"), timeout=10
            )
        except OSError:
            pass
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _state(lab) -> dict:
    return lab.evaluate("el => ({...el.simplecnnState})")


def _wait(page, lab, condition: str, timeout=120_000):
    page.wait_for_function(f"el => {{ const s = el.simplecnnState; return s && ({condition}); }}",
                           arg=lab.element_handle(), timeout=timeout)  # fmt: skip


def _shot(page, lab, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if lab is not None:
        lab.scroll_into_view_if_needed()
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def test_the_lab_trains_in_jupyterlab(browser, jupyterlab):
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    try:
        page = open_page(context, jupyterlab)
        page.goto(f"{jupyterlab}/lab/tree/lab.ipynb?token={TOKEN}")
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')",
                               timeout=120_000)  # fmt: skip
        # as a reader does: accept the kernel if JupyterLab asks for one, and once it is ready run the cell
        idle = "window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'"
        page.wait_for_function(f"({idle}) || document.querySelector('.jp-Dialog')", timeout=120_000)
        if page.locator(".jp-Dialog button.jp-mod-accept").count():
            page.locator(".jp-Dialog button.jp-mod-accept").click()
        page.wait_for_function(idle, timeout=120_000)
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
        lab = page.locator(".jp-OutputArea-output .scnn-train")
        deadline = time.monotonic() + 120
        while not lab.count():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the lab did not appear in the cell's output: see {_shot(page, None, 'jupyterlab-failed')}"
                )
            page.wait_for_timeout(500)
        _wait(page, lab, "s.status === 'ready' || s.error")
        assert not _state(lab)["error"], _state(lab)["error"]
        lab.get_by_role("button", name="Start").click()
        _wait(page, lab, "s.steps >= 20")
        lab.get_by_role("button", name="Pause").click()
        _wait(page, lab, "s.status === 'paused'")
        state = _state(lab)
        assert state["seen"] >= 20 * 32 and not state["error"], state
        _shot(page, lab, "traininglab-jupyterlab-light")

        page.evaluate(
            "window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
        )
        page.wait_for_function(
            "document.body.dataset.jpThemeLight === 'false' && !document.querySelector('#jupyterlab-splash')",
            timeout=30_000,
        )
        _shot(page, lab, "traininglab-jupyterlab-dark")
        # at phone width, JupyterLab's simple interface with the side panel closed, as on a phone
        page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
        page.evaluate("window.jupyterapp.commands.execute('application:set-mode', {mode: 'single-document'})")
        page.set_viewport_size({"width": 390, "height": 844})
        # JupyterLab lays itself out again for the narrow window
        page.wait_for_function("el => el.getBoundingClientRect().width <= 390", arg=lab.element_handle())
        _shot(page, lab, "traininglab-jupyterlab-phone")
        problems = [p for p in page.problems.all() if "favicon" not in p]
        assert not problems, problems
    finally:
        context.close()
