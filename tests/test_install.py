"""The package installs the way each notebook's Colab setup cell installs it, and imports.

The setup cell runs ``pip install "simplecnn @ git+<repository>@<branch>"`` in an environment
that already has torch, torchvision, matplotlib, tqdm and ipywidgets (Colab's). Here a fresh
virtual environment stands in for it: this test environment's packages are made visible to it
(a .pth file, after its own site-packages), the checkout's files are copied to a temporary
folder (as pip clones the repository), and ``pip install "simplecnn @ file://<copy>"`` runs
with dependency resolution on. It must install simplecnn and nothing else (the frameworks
already there satisfy the loose lower bounds); the model module and every module of the cnnkit
package must import from the new environment, outside the checkout, and the package data
(JavaScript, CSS, exported weights) must be there. The wheel that pip builds on the way must
build without warnings and hold the package data.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

import cnnkit

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = PYPROJECT["tool"]["setuptools"]["packages"]
#: The packages with Python in them (cnnkit.static holds only data files).
CODE_PACKAGES = [p for p in PACKAGES if (ROOT / "src" / p.replace(".", "/") / "__init__.py").is_file()]
MODULES = (
    PYPROJECT["tool"]["setuptools"]["py-modules"]
    + [
        f"{package}.{path.stem}"
        for package in CODE_PACKAGES
        for path in sorted((ROOT / "src" / package.replace(".", "/")).glob("*.py"))
        if path.stem not in ("__init__", "__main__")
    ]
    + [p for p in CODE_PACKAGES if "." in p]
)
STATIC = sorted(p.name for p in (ROOT / "src" / "cnnkit" / "static").iterdir() if p.is_file())


def _copy_checkout(dest: Path) -> Path:
    """The files a clone would have (tracked and untracked-but-not-ignored), or the packaging minimum."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        files = [f for f in listed if f and (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        files = ["pyproject.toml", "README.md", "LICENSE"] + [
            str(p.relative_to(ROOT))
            for p in (ROOT / "src").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    return dest


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_setup_cell_install_into_a_fresh_environment(tmp_path):
    checkout = _copy_checkout(tmp_path / "simple-cnn")
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    own_site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # Colab's preinstalled packages: this environment's site-packages, after the new one's own.
    (own_site / "zz_preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # Build with this environment's setuptools (checked against build-system.requires) instead of
    # fetching one: the new environment's bundled setuptools, if any, is older and goes.
    build_requires = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    for req in build_requires:
        assert req.specifier.contains(version(req.name)), (
            f"this environment's {req.name} {version(req.name)} violates {req}"
        )
    subprocess.run(
        [python, "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"],
        env=_clean_env(),
        capture_output=True,
        check=True,
    )
    before = {p.name for p in own_site.iterdir()}

    install = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-build-isolation",
        f"simplecnn @ {checkout.as_uri()}",
    ]
    result = subprocess.run(install, cwd=tmp_path, env=_clean_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

    added = sorted({p.name for p in own_site.iterdir()} - before)
    ours = {f"{m}.py" for m in MODULES if "." not in m} | {p.split(".")[0] for p in PACKAGES}
    others = [
        n for n in added if not n.lower().startswith("simplecnn") and n not in ours and n != "__pycache__"
    ]
    assert others == [], f"installing simplecnn also installed {others}: a dependency bound is too tight"

    check = (
        "import importlib, simplecnn, sys\n"
        "from importlib import metadata, resources\n"
        f"mods = {MODULES!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        "assert metadata.version('simplecnn') == importlib.import_module('cnnkit').__version__\n"
        f"static = {STATIC!r}\n"
        "assert all(resources.files('cnnkit').joinpath('static', n).is_file() for n in static), static\n"
        "assert importlib.import_module('cnnkit').__file__.startswith(simplecnn.__file__.rsplit('/', 1)[0])\n"
        "print(simplecnn.__file__)\n"
        "print(simplecnn.SimpleCNN()(__import__('torch').zeros(2, 1, 28, 28)).shape)\n"
    )
    result = subprocess.run(
        [python, "-c", check], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    where, shape = result.stdout.strip().splitlines()[-2:]
    assert Path(where).resolve().is_relative_to(own_site.resolve()), (
        f"imported from {where}, not the new environment"
    )
    assert shape == "torch.Size([2, 10])"
    cli = subprocess.run(
        [env_dir / "bin" / "simplecnn", "--help"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0 and "train" in cli.stdout, cli.stderr


def test_the_wheel_builds_without_warnings_and_ships_the_package_data(tmp_path):
    """The wheel pip builds from a clone: no warning from the build (setuptools warns, for
    example, about a folder of data files that is not listed as a package, and will stop
    shipping such folders), every file of cnnkit/static inside, and cnnkit.__version__ as its
    version."""
    checkout = _copy_checkout(tmp_path / "simple-cnn")
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        "dist",
        checkout,
    ]
    result = subprocess.run(build, cwd=tmp_path, env=_clean_env(), capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not re.findall(r"\w*Warning\b", output), output
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.startswith(f"simplecnn-{cnnkit.__version__}-"), wheel.name
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(f"cnnkit/static/{name}" for name in STATIC if f"cnnkit/static/{name}" not in names)
    assert STATIC and not missing, missing


def test_declared_dependencies_are_met_by_the_tested_versions():
    """requirements.txt pins the versions everything is tested with; they satisfy pyproject's bounds."""
    deps = [Requirement(d) for d in PYPROJECT["project"]["dependencies"]]
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    for dep in deps:
        assert dep.name.lower() in pins, f"{dep.name} is a dependency but not pinned in requirements.txt"
        assert dep.specifier.contains(pins[dep.name.lower()]), (
            f"{dep.name}=={pins[dep.name.lower()]} violates {dep}"
        )
