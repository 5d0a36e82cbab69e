"""Reader pages speak to the reader, never about how the course is tested.

A reader page is every file named in _toc.yml: the landing page, the theory pages, the notebooks
(markdown and code cells, comments and printed text included) and the back matter. A reader needs
their budget, their own timings and what to expect on their machine; the words of the testing
set-up ("fast mode", "CI", "the automated tests", "the two-core test machine", ...) belong in the
README and in tests/, not in the book.

The book has one budget, the reader's: notebooks write it as plain constants with a reason. So a
page never speaks of a second, shorter setting: not "quick" (the bare word is banned, so ordinary
English says "short" or "brief" instead; "quicker" and "quickly" are fine), not "reader
setting", not `SIMPLECNN_QUICK` or `budget(full=..., quick=...)`. Checks in a notebook are
phrased as what they show the reader, never as "the notebook asserts" or "checked below".

The second half of the file shows that the check can fail: page texts that contain such words
are caught, and ordinary words that merely contain the same letters are not.
"""

import json
import re
from pathlib import Path

import pytest
from book_files import toc_files

ROOT = Path(__file__).resolve().parents[1]

#: What a reader page must not say, as case-insensitive regular expressions on word boundaries.
#: `CI` is matched as a word of its own: "CIFAR", "specific" or a variable `x_ci` do not count.
TESTING_WORDS = {
    "fast mode": r"\bfast[\s-]+mode\b",
    "CI": r"\bCI\b",
    "continuous integration": r"\bcontinuous[\s-]+integration\b",
    "automated test(s)": r"\bautomated[\s-]+test(?:s|ing)?\b",
    "test machine": r"\btest(?:ing)?[\s-]+machines?\b",
    "two-core": r"\b(?:two|2)[\s-]+core\b",
    "offline subset": r"\boffline[\s-]+subset\b",
    "nbval": r"\bnbval\b",
    "SIMPLECNN_FAST": r"\bSIMPLECNN_FAST\b",
    "test suite": r"\btest[\s-]+suite\b",
    "GitHub Actions": r"\bgithub[\s-]+actions\b",
    # the quick/full budget switch that the course no longer has
    "budget(..., quick=...)": r"\bbudget\s*\([^)]*\bquick\s*=",
    "SIMPLECNN_QUICK": r"\bSIMPLECNN_QUICK\b",
    "quick": r"\bquick\b",
    "reader setting(s)": r"\breader(?:'s|s')?\s+settings?\b",
    # checks are phrased as what they show, not as the notebook's machinery
    "the notebook asserts": r"\bnotebooks?\s+asserts?\b",
    "checked below": r"\bchecked\s+below\b",
}
_PATTERN = re.compile("|".join(f"(?P<w{i}>{p})" for i, p in enumerate(TESTING_WORDS.values())), re.I)


def words_about_testing(text: str) -> list[str]:
    """Each place in ``text`` that talks about the testing set-up, as "phrase: ...context..."."""
    names = list(TESTING_WORDS)
    found = []
    for match in _PATTERN.finditer(text):
        name = names[int(match.lastgroup[1:])]
        line = text.count("\n", 0, match.start()) + 1
        context = " ".join(text[max(0, match.start() - 40) : match.end() + 40].split())
        found.append(f"{name!r} on line {line}: ...{context}...")
    return found


def page_text(path: Path) -> str:
    """What a reader sees of a page: a Markdown file whole; a notebook's markdown and code cells
    (code comments included), one after the other. Outputs are not committed."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] in ("markdown", "code", "raw")
        )
    return path.read_text(encoding="utf-8")


def reader_pages() -> list[Path]:
    """Every file of the table of contents (.md or .ipynb)."""
    pages = []
    for name in toc_files():
        pages += [ROOT / f"{name}{ext}" for ext in (".md", ".ipynb") if (ROOT / f"{name}{ext}").is_file()]
    return pages


def check_speaks_to_reader(text: str, name: str) -> None:
    found = words_about_testing(text)
    assert not found, (
        f"{name} talks about how the course is tested; speak to the reader instead (their budget, "
        "their timings, what to expect on their machine):\n  " + "\n  ".join(found)
    )


def test_the_table_of_contents_names_pages():
    pages = reader_pages()
    assert len(pages) == len(toc_files()), "every entry of _toc.yml should be a .md or .ipynb file"
    assert any(p.suffix == ".ipynb" for p in pages) and any(p.suffix == ".md" for p in pages)


@pytest.mark.parametrize("path", reader_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_reader_page_does_not_talk_about_testing(path):
    check_speaks_to_reader(page_text(path), str(path.relative_to(ROOT)))


# ---------------------------------------------------------------------------------------------
# The check can fail, and does not cry wolf
# ---------------------------------------------------------------------------------------------

TALKS_ABOUT_TESTING = [
    "In fast mode the notebook trains for two epochs.",
    "(fast-mode numbers in brackets)",
    "The CI budget is two epochs.",
    "Quick mode is what ci runs.",
    "CI: 2 epochs",
    "This runs under continuous integration.",
    "The automated tests check this claim.",
    "as the automated test does",
    "On the two-core test machine an epoch took 7 s.",
    "a 2-core CPU",
    "measured on the testing machine",
    "On the offline subset it reached 48 %.",
    "nbval executes this notebook.",
    "export SIMPLECNN_FAST=1",
    "The test suite runs every notebook.",
    "GitHub Actions builds the book.",
    "EPOCHS = budget(full=4, quick=2)",
    "smooth=budget(full=25,\n    quick=5),",
    "With SIMPLECNN_QUICK=1 every notebook runs shorter.",
    "export SIMPLECNN_QUICK=1",
    "the quick budget trains for 2 epochs",
    "In quick mode the threshold is 35 %.",
    "(Quick: 2 epochs.)",
    "Take a quick look at the kernels first.",
    "`quick`: 2 epochs",
    "In the reader setting the network reaches 99 %.",
    "with the reader's settings on a laptop",
    "The notebook asserts both claims.",
    "and the notebooks assert what they teach",
    "Every optimizer learns, checked below.",
    "print('checked below: the loss falls')",
]

SPEAKS_TO_READER = [
    "CIFAR-10 holds 60,000 colour photographs.",
    "a specific, circular decimal: the CIs of the ICIP paper",
    "ci_low, ci_high = interval(x)  # x_ci",
    "On a slow machine, lower EPOCHS in the notebook's first cells: it runs shorter and learns less.",
    "EPOCHS = 4  # four passes: enough to see the training accuracy pull ahead",
    "Its epochs are quicker, and it learns quickly.",
    "a brief look at the kernels; the budget of the next experiment",
    "The reader can change every setting: the notebook's settings come first.",
    "the settings a reader chooses; a reader's own setting of EPOCHS",
    "assert test_acc >= 0.45  # the network learns: chance is 10 %",
    "The next cell checks that every run beats chance; it is checked against PyTorch below.",
    "the notebook shows it; the asserts in the notebook; assertion",
    "The test set is touched once; test accuracy is measured on the test images.",
    "a fast model; the mode of the distribution",
    "Your machine has two cores? Then one thread per process is enough.",
    "a subset of 10,000 images that can be used offline",
    "the training step costs what it costs on a CPU core",
]


@pytest.mark.parametrize("text", TALKS_ABOUT_TESTING)
def test_the_check_fails_on_words_about_testing(text):
    with pytest.raises(AssertionError, match="talks about how the course is tested"):
        check_speaks_to_reader(text, "a page")


def test_the_check_reads_a_notebooks_code_comments(tmp_path):
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# A notebook\n"]},
            {"cell_type": "code", "metadata": {}, "source": ["EPOCHS = 2  # the CI budget\n"], "outputs": []},
        ]
    }
    path = tmp_path / "page.ipynb"
    path.write_text(json.dumps(notebook))
    with pytest.raises(AssertionError, match="'CI' on line 4: .*the CI budget"):
        check_speaks_to_reader(page_text(path), path.name)


def test_the_check_reads_a_notebooks_printed_text_and_budget_calls(tmp_path):
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# A notebook\n"]},
            {
                "cell_type": "code",
                "metadata": {},
                "source": ["EPOCHS = 2\n", 'print(f"quick budget: {EPOCHS} epochs")\n'],
                "outputs": [],
            },
            {
                "cell_type": "code",
                "metadata": {},
                "source": ["N = budget(full=2000, quick=300)\n"],
                "outputs": [],
            },
        ]
    }
    path = tmp_path / "page.ipynb"
    path.write_text(json.dumps(notebook))
    found = words_about_testing(page_text(path))
    assert [f.split(" on line")[0] for f in found] == ["'quick'", "'budget(..., quick=...)'"]


@pytest.mark.parametrize("text", SPEAKS_TO_READER)
def test_ordinary_words_are_not_flagged(text):
    check_speaks_to_reader(text, "a page")
