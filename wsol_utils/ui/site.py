"""A static HTML site of the executed suite, built offline: ``python -m wsol_utils site`` (``make site``).

Pages (all at the top of the site folder, so that one relative link works from every page):

* ``index.html`` -- ``README.md``; ``methods.html`` -- ``docs/methods.md``; ``architecture.html`` --
  ``docs/ARCHITECTURE.md``; ``figures.html`` -- ``figures/README.md`` (each only if the file exists);
* ``<name>.html`` for each notebook of :data:`wsol_utils.ui.reproduce.SUITE`: the executed copy in ``outputs/``
  (written by ``make reproduce``) with its figures and tables embedded, or, when there is none, the unexecuted
  ``notebooks/<name>.ipynb`` under a banner saying so.

Markdown is rendered with markdown-it-py (CommonMark + tables, raw HTML kept: docs/methods.md's ``<a id>``
anchors), notebooks with nbconvert's ``lab`` HTML exporter (images embedded as ``data:`` URIs). Every relative
link is resolved against the *source* file's folder in the repository and rewritten: to a page of the site
(``docs/methods.md#s1-3`` -> ``methods.html#s1-3``; ``notebooks/02_x.py`` or ``.ipynb`` -> ``02_x.html``), to a
copy of a repository image under the same relative path (``figures/acol_maps.png``), or, when the site has no
such page, to plain text (the link text kept, no broken link). The only remote references are nbconvert's
MathJax / require.js scripts: offline, formulas show as TeX source.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from wsol_utils.ui.reproduce import REPO_ROOT, SUITE

SITE_TITLE = "wsol-repro"
#: Repository files copied into the site when a page links to them (the rest becomes plain text).
ASSET_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"})
#: Markdown pages: (site file, repository file, navigation label).
MARKDOWN_PAGES: tuple[tuple[str, str, str], ...] = (
    ("index.html", "README.md", "Home"),
    ("methods.html", "docs/methods.md", "Methods"),
    ("architecture.html", "docs/ARCHITECTURE.md", "Architecture"),
    ("figures.html", "figures/README.md", "Figures"),
)
NOTEBOOK_SUFFIXES = (".ipynb", ".py")
#: Written into every built site: only a folder holding it is ever replaced by a new build.
MARKER = ".wsol-site"
_EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|#)")
_ANCHOR = re.compile(r"<a\b([^>]*?)\shref=\"([^\"]*)\"([^>]*)>(.*?)</a>", re.DOTALL)
_IMG_SRC = re.compile(r"(<img\b[^>]*?\ssrc=\")([^\"]*)(\")")

SITE_CSS = """
html { scroll-padding-top: 4.5em; }  /* an #anchor's heading lands below the sticky navigation bar */
nav.site-nav { position: sticky; top: 0; z-index: 1000; background: #1f2937; padding: 0.5em 1em;
  font: 14px/1.6 system-ui, sans-serif; display: flex; flex-wrap: wrap; gap: 0.3em 1em; }
nav.site-nav a { color: #e5e7eb; text-decoration: none; }
nav.site-nav a.current { color: #fff; font-weight: 600; border-bottom: 2px solid #60a5fa; }
nav.site-nav .site-name { color: #93c5fd; font-weight: 700; margin-right: 0.5em; }
div.site-banner { margin: 1em auto; max-width: 60em; padding: 0.7em 1em; border-radius: 4px;
  font: 14px/1.5 system-ui, sans-serif; }
div.site-banner.missing { background: #fef3c7; border: 1px solid #f59e0b; }
div.site-banner.executed { background: #ecfdf5; border: 1px solid #10b981; }
span.site-nolink { border-bottom: 1px dotted #888; }
"""
MARKDOWN_CSS = """
body.site-page { margin: 0; font: 16px/1.55 system-ui, sans-serif; color: #111827; }
main.site-main { max-width: 60em; margin: 0 auto; padding: 1em 1.5em 4em; }
main.site-main img { max-width: 100%; }
main.site-main table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
main.site-main th, main.site-main td { border: 1px solid #d1d5db; padding: 0.25em 0.6em; }
main.site-main pre { background: #f3f4f6; padding: 0.8em; overflow-x: auto; }
main.site-main code { font-size: 90%; }
"""


@dataclass(frozen=True)
class Page:
    """One page of the site: ``name`` (file in the site folder), the repository ``source`` it renders
    (repo-relative POSIX path; for a notebook ``notebooks/<stem>.ipynb``), its navigation ``label``, and
    ``executed``: the executed copy rendered instead of ``source`` (``None``: not executed, or markdown)."""

    name: str
    source: str
    label: str
    kind: str  # "markdown" | "notebook"
    executed: Path | None = None


@dataclass
class SiteReport:
    """What :func:`build_site` wrote: the site folder, its pages, the notebooks without an executed copy,
    and the build time in seconds."""

    out: Path
    pages: list[Page] = field(default_factory=list)
    unexecuted: list[str] = field(default_factory=list)
    seconds: float = 0.0


def site_pages(root: Path, outputs: Path, suite: Sequence[str] = SUITE) -> list[Page]:
    """The site's pages in navigation order: the markdown pages whose source exists under ``root``, then one
    page per suite notebook (``outputs/<name>.ipynb`` when it exists, else ``root/notebooks/<name>.ipynb``)."""
    pages = [
        Page(name, source, label, "markdown") for name, source, label in MARKDOWN_PAGES if (root / source).is_file()
    ]
    for stem in suite:
        executed = outputs / f"{stem}.ipynb"
        label = stem.replace("_", " ")
        pages.append(
            Page(f"{stem}.html", f"notebooks/{stem}.ipynb", label, "notebook", executed if executed.is_file() else None)
        )
    return pages


def page_targets(pages: Sequence[Page]) -> dict[str, str]:
    """Repository path -> site page for every page; a notebook is reachable from its ``.ipynb`` and its
    jupytext ``.py``."""
    targets: dict[str, str] = {}
    for page in pages:
        targets[page.source] = page.name
        if page.kind == "notebook":
            stem = page.source.rsplit(".", 1)[0]
            targets.update({stem + suffix: page.name for suffix in NOTEBOOK_SUFFIXES})
    return targets


def repo_path(url_path: str, source_dir: str) -> str | None:
    """The repository-relative POSIX path a relative link ``url_path`` (percent-encoded, no fragment) names
    from a file in ``source_dir``, or ``None`` when it leaves the repository (``../`` past the root)."""
    parts: list[str] = []
    joined = PurePosixPath(source_dir) / urllib.parse.unquote(url_path)
    for part in joined.parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) if parts else None


def resolve_link(url: str, source_dir: str, targets: dict[str, str], root: Path) -> tuple[str | None, str | None]:
    """Where a link ``url`` in a file of ``source_dir`` points in the site: ``(href, asset)``.

    * external (``https:``, ``mailto:``, ``data:``, ``//host``) and in-page (``#x``) links: unchanged, no asset;
    * a page's source (markdown or notebook): ``("page.html#fragment", None)``;
    * an image file that exists in the repository: ``("path/in/repo.png", "path/in/repo.png")`` (copy it);
    * anything else (a file the site has no page for, or a path that does not exist): ``(None, None)``:
      render the link as plain text.
    """
    if _EXTERNAL.match(url):
        return url, None
    path, _, fragment = url.partition("#")
    target = repo_path(path.split("?", 1)[0], source_dir)
    if target is None:
        return None, None
    suffix = f"#{fragment}" if fragment else ""
    if target in targets:
        return targets[target] + suffix, None
    if PurePosixPath(target).suffix.lower() in ASSET_SUFFIXES and (root / target).is_file():
        return urllib.parse.quote(target) + suffix, target
    return None, None


def rewrite_links(body: str, source_dir: str, targets: dict[str, str], root: Path) -> tuple[str, set[str]]:
    """Rewrite every ``<a href>`` and ``<img src>`` of ``body`` with :func:`resolve_link`; returns the new HTML
    and the repository assets it needs copied. An unresolvable link becomes
    ``<span class="site-nolink" title="...">text</span>``; an unresolvable image keeps its alt text only."""
    assets: set[str] = set()

    def anchor(match: re.Match[str]) -> str:
        before, url, after, text = match.groups()
        href, asset = resolve_link(html.unescape(url), source_dir, targets, root)
        if href is None:
            title = html.escape(f"{html.unescape(url)} (in the repository; not part of this site)")
            return f'<span class="site-nolink" title="{title}">{text}</span>'
        assets.update([asset] if asset else [])
        return f'<a{before} href="{html.escape(href)}"{after}>{text}</a>'

    def image(match: re.Match[str]) -> str:
        opening, url, closing = match.groups()
        href, asset = resolve_link(html.unescape(url), source_dir, targets, root)
        if href is None:
            return f'{opening}data:,{closing} data-missing="{html.escape(url)}'
        assets.update([asset] if asset else [])
        return f"{opening}{html.escape(href)}{closing}"

    return _IMG_SRC.sub(image, _ANCHOR.sub(anchor, body)), assets


def render_markdown(text: str) -> str:
    """CommonMark + tables + strikethrough to an HTML fragment; raw HTML is kept (``<a id="s1-3">``) and
    headings get GitHub's ids (``## Run in the cloud (Colab, Binder)`` -> ``run-in-the-cloud-colab-binder``),
    so the README's in-page links work on the site as on GitHub."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.anchors import anchors_plugin

    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return str(parser.use(anchors_plugin, min_level=1, max_level=6).render(text))


def render_notebook(path: Path) -> str:
    """A notebook as a full HTML page (nbconvert's ``lab`` template, input prompts hidden, images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", embed_images=True, exclude_input_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(str(path), as_version=4))
    return str(body)


def navigation(pages: Sequence[Page], current: Page) -> str:
    """The navigation bar shown on every page; the current page is marked ``class="current"``."""
    links = [
        f'<a href="{page.name}" title="{html.escape(page.source)}"'
        f"{' class=current' if page is current else ''}>{html.escape(page.label)}</a>"
        for page in pages
    ]
    return f'<nav class="site-nav"><span class="site-name">{SITE_TITLE}</span>{"".join(links)}</nav>'


def shown_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (``outputs/01_x.ipynb``), else as given."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def banner(page: Page, root: Path, outputs: Path) -> str:
    """The notice above a notebook: where its executed copy came from, or that it was not executed."""
    if page.kind != "notebook":
        return ""
    if page.executed is None:
        missing = shown_path(outputs / PurePosixPath(page.source).name, root)
        return (
            f'<div class="site-banner missing"><strong>Not executed.</strong> There is no executed copy '
            f"<code>{html.escape(missing)}</code>: this page shows the notebook without its outputs (no figures "
            "or tables). Run <code>make reproduce</code>, then <code>make site</code>.</div>"
        )
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(page.executed.stat().st_mtime))
    return (
        f'<div class="site-banner executed">Executed copy <code>{html.escape(shown_path(page.executed, root))}'
        f"</code>, written {stamp} by <code>python -m wsol_utils reproduce</code>.</div>"
    )


def page_title(page: Page) -> str:
    """``<title>`` of a page: ``wsol-repro · <label or notebook name>``."""
    name = PurePosixPath(page.source).stem if page.kind == "notebook" else page.label
    return f"{SITE_TITLE} · {name}"


def markdown_page(page: Page, body: str, pages: Sequence[Page]) -> str:
    """A complete HTML page around ``body`` (the rendered markdown, links already rewritten)."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(page_title(page))}</title><style>{SITE_CSS}{MARKDOWN_CSS}</style></head>"
        f'<body class="site-page">{navigation(pages, page)}<main class="site-main">{body}</main></body></html>\n'
    )


def notebook_page(page: Page, document: str, root: Path, outputs: Path, pages: Sequence[Page]) -> str:
    """The site's title, style, navigation bar and banner put into ``document`` (nbconvert's page of the
    notebook, links already rewritten)."""
    document = re.sub(r"<title>.*?</title>", f"<title>{html.escape(page_title(page))}</title>", document, count=1)
    document = document.replace("</head>", f"<style>{SITE_CSS}</style></head>", 1)
    header = navigation(pages, page) + banner(page, root, outputs)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + header, document, count=1)


def render_page(page: Page, root: Path, outputs: Path, pages: Sequence[Page]) -> tuple[str, set[str]]:
    """One complete page and the repository assets it links to. Links are rewritten relative to the page's
    repository source (a notebook's executed copy is read as if it were ``notebooks/<name>.ipynb``)."""
    source_dir = str(PurePosixPath(page.source).parent)
    targets = page_targets(pages)
    if page.kind == "markdown":
        body = render_markdown((root / page.source).read_text(encoding="utf-8"))
        body, assets = rewrite_links(body, source_dir, targets, root)
        return markdown_page(page, body, pages), assets
    document, assets = rewrite_links(render_notebook(page.executed or root / page.source), source_dir, targets, root)
    return notebook_page(page, document, root, outputs, pages), assets


class SiteFolderError(ValueError):
    """The output folder cannot be (re)placed by a site without losing files that are not a site's."""


def check_replaceable(out: Path, root: Path) -> None:
    """Refuse an ``out`` that is the repository or one of its parents, or an existing non-empty folder that a
    previous build did not write (no :data:`MARKER` in it): replacing it would delete the user's files."""
    if out == root or out in root.parents:
        raise SiteFolderError(f"--out {out}: this is the repository (or contains it); choose a new folder, e.g. site/")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise SiteFolderError(
            f"--out {out}: exists and was not built by `python -m wsol_utils site` (no {MARKER} in it); "
            "it would be replaced: choose a new or empty folder"
        )


def build_site(root: Path = REPO_ROOT, outputs: Path | None = None, out: Path | None = None) -> SiteReport:
    """Build the site of ``root`` (the repository) and ``outputs`` (executed notebooks; default
    ``root/outputs``) into ``out`` (default ``root/site``). The site is written to ``<out>.partial`` and
    moved into place at the end, so an interrupted build leaves the previous site intact. Raises
    :class:`SiteFolderError` when ``out`` holds files that a previous build did not write."""
    started = time.perf_counter()
    root = Path(root).resolve()
    outputs = Path(outputs if outputs is not None else root / "outputs").resolve()
    out = Path(out if out is not None else root / "site").resolve()
    check_replaceable(out, root)
    pages = site_pages(root, outputs)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    assets: set[str] = set()
    for page in pages:
        document, needed = render_page(page, root, outputs, pages)
        assets |= needed
        (partial / page.name).write_text(document, encoding="utf-8")
    for asset in sorted(assets):
        (partial / asset).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / asset, partial / asset)
    (partial / MARKER).write_text("built by python -m wsol_utils site; replaced by the next build\n")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    unexecuted = [page.source for page in pages if page.kind == "notebook" and page.executed is None]
    return SiteReport(out, pages, unexecuted, time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wsol_utils site [--outputs DIR] [--out DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m wsol_utils site",
        description="Build a static HTML site of the executed suite (README, executed notebooks, docs/methods.md) "
        "offline. Run `make reproduce` first; then open <out>/index.html.",
    )
    parser.add_argument("--outputs", default=None, help="executed notebooks (default: outputs/ of the checkout)")
    parser.add_argument("--out", default=None, help="site folder, replaced (default: site/ of the checkout)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    outputs = Path(args.outputs) if args.outputs else None
    if outputs is not None and not outputs.is_dir():
        parser.error(f"--outputs {outputs}: no such folder (run `make reproduce` first, or pass its --output-dir)")
    try:
        report = build_site(REPO_ROOT, outputs, Path(args.out) if args.out else None)
    except SiteFolderError as error:
        parser.error(str(error))
    if report.unexecuted:
        names = ", ".join(PurePosixPath(source).stem for source in report.unexecuted)
        print(f"note: not executed (no copy in the outputs folder), shown without outputs: {names}")
        print("      run `make reproduce` first for the executed suite")
    print(f"Site: {report.out / 'index.html'} ({len(report.pages)} pages, {report.seconds:.1f} s)")
    return 0
