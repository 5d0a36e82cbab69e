"""The repository is named once, in _config.yml; the notebooks, the table of contents and the
package metadata agree with it, so every Colab button opens a notebook that can set itself up.

The built pages' Colab and download buttons are checked in the browser suite
(tests/browser/test_book.py::test_colab_and_download_buttons).

The layout of src/ is checked here too: the model file stays short and imports no helper, and
no module imports another that (through others) imports it back.
"""

import ast
import json
import re
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from book_files import toc_files

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def repository() -> tuple[str, str]:
    repo = CONFIG["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def code_lines(source: str) -> list[str]:
    """The lines of a cell that do something (no blank lines, no comments)."""
    return [
        line.rstrip() for line in source.splitlines() if line.strip() and not line.strip().startswith("#")
    ]


def test_config_names_a_github_repository_and_colab():
    url, branch = repository()
    parsed = urlparse(url)
    assert parsed.scheme == "https" and parsed.netloc == "github.com"
    assert len(parsed.path.strip("/").split("/")) == 2, f"expected https://github.com/OWNER/NAME, got {url}"
    assert re.fullmatch(r"[\w.\-/]+", branch), branch
    assert CONFIG["repository"].get("path_to_book", "") == "", (
        "notebook paths below assume the book is the repository root"
    )
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["html"]["use_repository_button"] is True


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 9


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_its_title_then_the_colab_setup_cell(path):
    url, branch = repository()
    cells = json.loads(path.read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# "), (
        f"{path.name}: the first cell must be the title (markdown '# ...')"
    )
    setup = cells[1]
    source = "".join(setup["source"])
    assert setup["cell_type"] == "code", f"{path.name}: the second cell must be the Colab setup cell"
    assert "hide-cell" in setup.get("metadata", {}).get("tags", []), (
        f"{path.name}: tag the setup cell hide-cell"
    )
    assert code_lines(source) == [
        "import sys",
        'if "google.colab" in sys.modules:',
        f'    %pip install --quiet "simplecnn @ git+{url}@{branch}"',
    ], (
        f"{path.name}: the setup cell must install from {url}@{branch} (the repository in _config.yml), only in Colab"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_table_of_contents(path):
    assert f"notebooks/{path.stem}" in toc_files(), (
        f"{path.name} is not in _toc.yml, so the book has no page for it"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    assert not [i for i, c in enumerate(cells) if c.get("outputs")], f"{path.name} has stored outputs"


def test_every_toc_entry_exists():
    missing = [f for f in toc_files() if not any((ROOT / f"{f}{ext}").is_file() for ext in (".md", ".ipynb"))]
    assert not missing, f"in _toc.yml but missing: {missing}"


def test_pip_install_from_git_keeps_the_preinstalled_frameworks():
    """In Colab, `pip install git+...` must not replace Colab's torch, torchvision or ipywidgets:
    every dependency is a lower bound at most (no pins, no upper bounds)."""
    deps = PYPROJECT["project"]["dependencies"]
    for dep in deps:
        assert not re.search(r"==|<|~=|!=|@", dep), f"{dep!r}: use a lower bound (>=) at most"
    names = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower() for d in deps}
    assert {"torch", "torchvision", "ipywidgets"} <= names


def test_py_modules_cover_every_src_module():
    modules = {p.stem for p in (ROOT / "src").glob("*.py")}
    assert set(PYPROJECT["tool"]["setuptools"]["py-modules"]) == modules, (
        "list every module of src/ in pyproject.toml [tool.setuptools] py-modules, or Colab won't get it"
    )


def test_imports_of_src_are_declared_dependencies():
    """What src/ imports at the top level is the standard library, src/ itself or a dependency."""
    import sys

    declared = {
        re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower().replace("-", "_")
        for d in PYPROJECT["project"]["dependencies"]
    }
    local = {p.stem for p in (ROOT / "src").glob("*.py")} | {
        p.parent.name for p in (ROOT / "src").glob("*/__init__.py")
    }
    for path in (ROOT / "src").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                ok = top in sys.stdlib_module_names or top in local or top.lower() in declared
                # packages that come with a declared one: Pillow with matplotlib, IPython with ipywidgets
                ok = ok or top in {"PIL", "IPython", "cycler"}
                assert ok, f"{path.name} imports {name}, which is not a declared dependency"


def _imports(path: Path, src: Path) -> set[str]:
    """What ``path`` (a file under ``src``) imports, wherever in the file, as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative (from . import x): resolve against the importing package
                package = path.relative_to(src).parent.parts
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ((node.module,) if node.module else ()))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def _import_graph(src: Path) -> dict[str, set[str]]:
    """Each module of ``src`` (dotted name) and the modules of ``src`` it imports."""
    modules = {}
    for path in src.rglob("*.py"):
        parts = path.relative_to(src).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {
        name: {m for m in _imports(path, src) if m in modules and m != name} for name, path in modules.items()
    }


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules that import each other round in a circle, or None."""

    def visit(name, trail):
        if name in trail:
            return trail[trail.index(name) :] + [name]
        for other in sorted(graph[name]):
            if found := visit(other, trail + [name]):
                return found
        return None

    return next((c for c in map(lambda n: visit(n, []), sorted(graph)) if c), None)


def test_simplecnn_is_the_short_model_file():
    """The model file reads top to bottom in about 300 lines."""
    lines = len((ROOT / "src" / "simplecnn.py").read_text().splitlines())
    assert lines <= 320, f"src/simplecnn.py has {lines} lines; the model file is meant to be about 300"


def test_simplecnn_imports_no_helper():
    """The support package uses the model file, never the other way round."""
    helpers = {
        m for m in _imports(ROOT / "src" / "simplecnn.py", ROOT / "src") if m.split(".")[0] == "cnnkit"
    }
    assert not helpers, f"src/simplecnn.py imports {sorted(helpers)}"


def test_no_file_in_src_is_over_about_400_lines():
    for module in (ROOT / "src").rglob("*.py"):
        lines = len(module.read_text().splitlines())
        assert lines <= 420, f"{module.relative_to(ROOT)} has {lines} lines, over about 400"


def test_the_import_graph_sees_every_form_of_import(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    files = {
        "top.py": "import pkg.a\n",
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/b.py": "def f():\n    from .sub.c import g\n",  # inside a function, relative
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "from .. import a\nfrom pkg import b\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    graph = _import_graph(tmp_path)
    assert graph["top"] == {"pkg.a"} and graph["pkg.a"] == {"pkg", "pkg.b"}
    assert graph["pkg.b"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg", "pkg.a", "pkg.b"}
    assert _circle(graph) == ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]
    (tmp_path / "pkg" / "sub" / "c.py").write_text("import math\n")
    assert _circle(_import_graph(tmp_path)) is None


def test_no_import_circle_in_src():
    graph = _import_graph(ROOT / "src")
    assert "simplecnn" in graph["cnnkit.augment"]  # the graph holds the real imports
    circle = _circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle or [])

    def visit(name, trail):
        assert name not in trail, "import circle: " + " -> ".join(trail[trail.index(name) :] + [name])
        for other in sorted(graph[name]):
            visit(other, trail + [name])

    for name in sorted(graph):
        visit(name, [])
