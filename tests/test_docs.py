"""The repository's references to its method reference resolve inside the repository.

* No tracked file points at the notes file that lived outside the checkout (the words ``SPEC`` or
  ``shared/``): a user who clones the repository cannot follow such a reference. The definitions live in
  ``docs/methods.md``. This test file is the only file allowed to name them.
* Every citation ``methods.md §X.Y`` (also ``§X.Y-§X.Z`` and ``§X, §Y`` chains after it) names a numbered
  heading of ``docs/methods.md``, and every link ``methods.md#anchor`` (or ``#anchor`` inside
  ``docs/methods.md``) names one of its anchors.
* ``docs/methods.md`` keeps the section numbers the code has always cited.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT / "docs" / "methods.md"
THIS_FILE = Path(__file__).resolve()

#: Folders never scanned when git is unavailable (build outputs, environments, caches).
_SKIP_DIRS = {
    ".git",
    ".venv",
    "runs",
    "outputs",
    "__pycache__",
    ".pytest_cache",
    ".ipynb_checkpoints",
    "node_modules",
    "build",
    "dist",
}

#: A reference to the out-of-repository notes: the word SPEC (case-sensitive) or a path through shared/.
STALE_REFERENCE = re.compile(r"\bSPEC\b|\bshared/")

_NUMBER = r"\d+(?:\.\d+)*"
#: ``methods.md §1.3``, optionally followed by ``-§1.4``, ``–§1.4``, ``, §2``, ``and §3``, ``to §5``.
CITATION = re.compile(rf"methods\.md\s*§\s*({_NUMBER})((?:\s*(?:[-–,/]|and|to)\s*§\s*{_NUMBER})*)")
CHAINED = re.compile(rf"§\s*({_NUMBER})")
LINK = re.compile(r"methods\.md#([\w.\-]+)")
SELF_LINK = re.compile(r"\]\(#([\w.\-]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
NUMBERED = re.compile(rf"^({_NUMBER})\.?\s")
ANCHOR = re.compile(r"""<a\s+(?:id|name)\s*=\s*["']([^"']+)["']""")

#: Sections the code cites (they must keep these numbers: citations are rewritten mechanically).
REQUIRED_SECTIONS = ("1", "1.1", "1.2", "1.3", "1.4", "1.5", "2", "2.1", "2.2", "2.3", "3", "4", "5")


def tracked_files() -> list[Path]:
    """Files tracked by git (the working tree's copies); every file under the root when git is unavailable."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        paths = [ROOT / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        paths = [
            path
            for path in ROOT.rglob("*")
            if not _SKIP_DIRS.intersection(path.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in path.relative_to(ROOT).parts)
        ]
    return sorted(path for path in paths if path.is_file())


def text_files() -> dict[Path, str]:
    """``{path: text}`` of the tracked files that decode as UTF-8 (images and other binaries are skipped)."""
    texts = {}
    for path in tracked_files():
        try:
            texts[path] = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    return texts


def github_slug(heading: str) -> str:
    """GitHub's automatic anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def methods_sections() -> tuple[set[str], set[str]]:
    """``(section numbers, anchors)`` of docs/methods.md: numbered headings; explicit and automatic anchors."""
    text = METHODS.read_text(encoding="utf-8")
    numbers, anchors = set(), set(ANCHOR.findall(text))
    for _level, title in HEADING.findall(text):
        anchors.add(github_slug(title))
        match = NUMBERED.match(title)
        if match:
            numbers.add(match.group(1))
    return numbers, anchors


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_methods_reference_exists_and_keeps_the_cited_numbering() -> None:
    assert METHODS.is_file(), "docs/methods.md is missing: it holds the definitions the code cites"
    numbers, _anchors = methods_sections()
    missing = [number for number in REQUIRED_SECTIONS if number not in numbers]
    assert not missing, (
        f"docs/methods.md lacks the numbered headings {missing}; the code cites them (e.g. "
        "'docs/methods.md §1.3'), so keep headings such as '## 1. Models' and '### 1.3 ACoL erasing'"
    )


def test_no_reference_to_the_out_of_repository_notes() -> None:
    stale = []
    for path, text in text_files().items():
        if path.resolve() == THIS_FILE:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if STALE_REFERENCE.search(line):
                stale.append(f"{_relative(path)}:{number}: {line.strip()[:160]}")
    if stale:
        pytest.fail(
            f"{len(stale)} line(s) cite notes outside the repository (SPEC / shared/); cite "
            "'docs/methods.md §X.Y' instead (notebooks: edit the .py source, then `make notebooks`):\n"
            + "\n".join(stale),
            pytrace=False,
        )


def test_every_methods_citation_names_an_existing_section() -> None:
    numbers, anchors = methods_sections()
    broken = []
    for path, text in text_files().items():
        if path.resolve() == THIS_FILE:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            where = f"{_relative(path)}:{number}"
            for match in CITATION.finditer(line):
                cited = [match.group(1), *CHAINED.findall(match.group(2))]
                broken += [f"{where}: §{section} (no such heading)" for section in cited if section not in numbers]
            links = LINK.findall(line) + (SELF_LINK.findall(line) if path == METHODS else [])
            broken += [f"{where}: #{anchor} (no such anchor)" for anchor in links if anchor not in anchors]
    if broken:
        known = sorted(numbers, key=lambda n: [int(p) for p in n.split(".")])
        pytest.fail(
            f"citations of docs/methods.md that point nowhere (sections: {known}):\n" + "\n".join(broken), pytrace=False
        )


def test_citation_parser_reads_the_forms_used_in_the_code() -> None:
    """The patterns above catch every form the code uses, so a renumbering cannot slip through."""

    def cited(line: str) -> list[str]:
        return [
            section
            for match in CITATION.finditer(line)
            for section in (match.group(1), *CHAINED.findall(match.group(2)))
        ]

    assert cited("(docs/methods.md §2.2, issue 7)") == ["2.2"]
    assert cited("docs/methods.md §2.2. The public code") == ["2.2"]
    assert cited("(docs/methods.md §1.3-§1.4)") == ["1.3", "1.4"]
    assert cited("[methods.md §1.3](methods.md#s1-3)") == ["1.3"]
    assert cited("(docs/methods.md §1.5, §2)") == ["1.5", "2"]
    assert cited("(ACoL §3.1, docs/methods.md §1.1)") == ["1.1"]
    assert LINK.findall("[§1.4](methods.md#s1-4)") == ["s1-4"]
    assert github_slug("1.3 ACoL erasing (Algorithm 1)") == "13-acol-erasing-algorithm-1"
    old_name = "SP" + "EC"  # spelt in two pieces so that a mechanical rewrite of old citations leaves this line alone
    assert STALE_REFERENCE.search(f"see {old_name} §2.2") and STALE_REFERENCE.search("../shared/notes")
    assert not STALE_REFERENCE.search("importlib.util.spec_from_file_location; SPECIAL; shared memory")
