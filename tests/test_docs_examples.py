"""Every Python example of the README and the documentation runs.

The ```python blocks of each page run in order, in one namespace per page, so a later block
can use what an earlier one defined.  A block is skipped only when the line just before its
fence is a marker with a reason, ``<!-- no-test: needs a data set download -->``; a marker
without a reason fails the test.  Other blocks (```bash, ```text, ...) are not run.

Tracebacks point at the Markdown file and line of the failing statement.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
NO_TEST = re.compile(r"^\s*<!--\s*no-test\b\s*:?\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the first code line
    code: str
    language: str
    skip_reason: str | None  # None: run it


def code_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with their language and first line."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].split()[0].lower() if opening["info"].strip() else ""
        marker = NO_TEST.match(lines[i - 1]) if i else None
        body, j = [], i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence)
                                      and lines[j].strip().strip(fence[0]) == ""):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        assert j < len(lines), f"{page}:{i + 1}: code fence is never closed"
        blocks.append(Block(page, i + 2, textwrap.dedent("\n".join(body)) + "\n", language,
                            None if marker is None else marker["reason"]))
        i = j + 1
    return blocks


def python_blocks(page: Path) -> list[Block]:
    return [b for b in code_blocks(page) if b.language in ("python", "py", "python3")]


PAGES_WITH_PYTHON = [p for p in PAGES if python_blocks(p)]


def test_pages_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES_WITH_PYTHON}
    assert {"README.md", "docs/getting-started.md"} <= names, names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_test_markers_give_a_reason(page):
    for block in code_blocks(page):
        if block.skip_reason is not None:
            assert block.skip_reason, (
                f"{page}:{block.line - 1}: a no-test marker needs a reason, "
                f"e.g. <!-- no-test: downloads a data set -->")
            assert block.language in ("python", "py", "python3"), (
                f"{page}:{block.line - 1}: no-test marks a {block.language or 'plain'} block, "
                f"which is never run anyway")


@pytest.mark.parametrize("page", PAGES_WITH_PYTHON,
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    monkeypatch.setenv("MPLBACKEND", "Agg")
    threads = numba.get_num_threads()
    # Examples may seed NumPy's global generator, as classic code does: restore it after.
    legacy_state = np.random.get_state()  # noqa: NPY002
    namespace: dict = {"__name__": "__docs__"}
    try:
        for block in python_blocks(page):
            if block.skip_reason is not None:
                continue
            # Pad with empty lines so that tracebacks give the line in the Markdown file.
            source = "\n" * (block.line - 1) + block.code
            exec(compile(source, str(page), "exec"), namespace)
    finally:
        numba.set_num_threads(threads)
        np.random.set_state(legacy_state)  # noqa: NPY002


def test_block_parser():
    page_text = textwrap.dedent("""\
        text
        ```python
        a = 1
        ```
        <!-- no-test: needs the network -->
        ```python
        raise SystemExit
        ```
        - item

            ```python
            b = a + 1
            ```
        ````bash
        ```python
        not python
        ```
        ````
        """)
    blocks = _parse_text(page_text)
    assert [(b.language, b.code, b.skip_reason) for b in blocks] == [
        ("python", "a = 1\n", None),
        ("python", "raise SystemExit\n", "needs the network"),
        ("python", "b = a + 1\n", None),
        ("bash", "```python\nnot python\n```\n", None),
    ]
    assert [b.line for b in blocks] == [3, 7, 12, 15]


def _parse_text(text: str) -> list[Block]:
    class _Page:
        def read_text(self, encoding: str) -> str:
            return text

    return code_blocks(_Page())  # type: ignore[arg-type]
