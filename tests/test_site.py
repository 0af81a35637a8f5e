"""Tests for wsol_utils.ui.site: link rewriting by hand, a site built from the real README / docs plus one tiny
notebook executed here (nbclient) standing in for ``outputs/01_cam_equivalence.ipynb`` (the other suite notebooks
have no executed copy: banner pages), every href and src of that site resolving to a file and an element id,
and -- marked ``browser`` -- the site in Debian's headless Chromium served from loopback: every page reached
through the navigation bar and the internal links, images rendered, screenshots in the test's tmp folder."""

from __future__ import annotations

import functools
import html
import http.server
import re
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from wsol_utils.ui import site
from wsol_utils.ui.reproduce import SUITE

from browser_support import LOOPBACK, launch_chromium, require_chromium

REPO = Path(__file__).resolve().parents[1]
EXECUTED = SUITE[0]  # the one suite notebook given an executed copy
TARGETS = {
    "README.md": "index.html",
    "docs/methods.md": "methods.html",
    "notebooks/01_x.ipynb": "01_x.html",
    "notebooks/01_x.py": "01_x.html",
}
MARKDOWN_LINKS = "See [the metrics](../docs/methods.md#s2-2), [home](../README.md) and [pins](../constraints.txt)."
PLOT = """%matplotlib inline
import matplotlib.pyplot as plt
plt.figure(figsize=(2, 2)); plt.plot([0, 1], [1, 0]); plt.show()"""
#: as a browser resolves a fragment: the id as written, then percent-decoded
HAS_ELEMENT = "id => (document.getElementById(id) ?? document.getElementById(decodeURIComponent(id))) !== null"
TABLE = "import pandas as pd\npd.DataFrame({'method': ['CAM', 'ACoL'], 'MaxBoxAccV2': [59.1, 59.7]})"


# -- link rewriting, by hand ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "source_dir", "expected"),
    [
        ("../docs/methods.md#s1-3", "notebooks", ("methods.html#s1-3", None)),
        ("docs/methods.md", ".", ("methods.html", None)),
        ("notebooks/01_x.py", ".", ("01_x.html", None)),
        ("01_x.ipynb#top", "notebooks", ("01_x.html#top", None)),
        ("figures/acol_maps.png", ".", ("figures/acol_maps.png", "figures/acol_maps.png")),
        ("../figures/acol_maps.png", "docs", ("figures/acol_maps.png", "figures/acol_maps.png")),
        ("figures/no_such.png", ".", (None, None)),
        ("constraints.txt", ".", (None, None)),  # exists, but the site has no page for it
        ("../../etc/passwd", "docs", (None, None)),  # leaves the repository
        ("https://example.org/a.md", ".", ("https://example.org/a.md", None)),
        ("#s1", "docs", ("#s1", None)),
        ("data:image/png;base64,AAAA", "notebooks", ("data:image/png;base64,AAAA", None)),
    ],
)
def test_resolve_link(url: str, source_dir: str, expected: tuple[str | None, str | None]) -> None:
    assert site.resolve_link(url, source_dir, TARGETS, REPO) == expected


def test_repo_path_normalizes_and_refuses_to_leave_the_repository() -> None:
    assert site.repo_path("./a/../b%20c.md", "docs") == "docs/b c.md"
    assert site.repo_path("..", "docs") is None
    assert site.repo_path("../..", "docs") is None


def test_rewrite_links_keeps_text_of_a_link_without_page_and_collects_assets() -> None:
    body = (
        '<p><a href="../README.md">home</a> <a class="x" href="../constraints.txt">pins</a> '
        '<img alt="maps" src="../figures/acol_maps.png"> <img alt="gone" src="gone.png"></p>'
    )
    rewritten, assets = site.rewrite_links(body, "docs", TARGETS, REPO)
    assert '<a href="index.html">home</a>' in rewritten
    assert 'href="../constraints.txt"' not in rewritten and ">pins</span>" in rewritten
    assert 'src="figures/acol_maps.png"' in rewritten and 'src="gone.png"' not in rewritten
    assert assets == {"figures/acol_maps.png"}


def test_markdown_headings_get_githubs_ids_and_raw_html_anchors_survive() -> None:
    rendered = site.render_markdown('## Run in the cloud (Colab, Binder)\n\n<a id="s1-3"></a>\n\n| a |\n|---|\n| 1 |\n')
    assert '<h2 id="run-in-the-cloud-colab-binder">' in rendered
    assert '<a id="s1-3"></a>' in rendered and "<td>1</td>" in rendered


def test_page_targets_reach_a_notebook_from_both_files_of_its_jupytext_pair(tmp_path: Path) -> None:
    pages = site.site_pages(REPO, tmp_path, suite=("01_x",))
    targets = site.page_targets(pages)
    assert targets["notebooks/01_x.py"] == targets["notebooks/01_x.ipynb"] == "01_x.html"
    assert targets["README.md"] == "index.html"


# -- a site built from the real docs and one executed stand-in notebook ---------------------------------------
def executed_stand_in(path: Path) -> Path:
    """A tiny notebook, executed here with nbclient: a markdown link into the docs, a figure and a table."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# Stand-in for {EXECUTED}\n\n{MARKDOWN_LINKS}"),
        nbformat.v4.new_code_cell(PLOT),
        nbformat.v4.new_code_cell(TABLE),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> site.SiteReport:
    base = tmp_path_factory.mktemp("site")
    executed_stand_in(base / "outputs" / f"{EXECUTED}.ipynb")
    return site.build_site(REPO, base / "outputs", base / "site")


def page_text(report: site.SiteReport, name: str) -> str:
    return (report.out / name).read_text(encoding="utf-8")


def test_site_has_front_page_docs_and_one_page_per_suite_notebook(built: site.SiteReport) -> None:
    names = {path.name for path in built.out.glob("*.html")}
    assert {"index.html", "methods.html"} | {f"{stem}.html" for stem in SUITE} <= names
    assert "wsol-repro" in page_text(built, "index.html")  # README's heading
    assert built.unexecuted == [f"notebooks/{stem}.ipynb" for stem in SUITE[1:]]
    assert not built.out.with_name(built.out.name + ".partial").exists()


def test_executed_notebook_page_embeds_its_figure_and_table(built: site.SiteReport) -> None:
    text = page_text(built, f"{EXECUTED}.html")
    assert re.search(r'<img[^>]+src="data:image/png;base64,', text)
    assert "MaxBoxAccV2" in text and "<table" in text
    assert "Not executed" not in text and "site-banner executed" in text
    # the notebook's markdown links, resolved from notebooks/: a page, the front page, plain text
    assert 'href="methods.html#s2-2"' in text and 'href="index.html"' in text
    assert 'href="../constraints.txt"' not in text and ">pins</span>" in text


def test_a_notebook_without_executed_copy_gets_a_banner_page(built: site.SiteReport) -> None:
    text = page_text(built, f"{SUITE[1]}.html")
    assert "Not executed." in text and "make reproduce" in text
    assert f"<title>wsol-repro · {SUITE[1]}</title>" in text


def test_every_page_has_the_full_navigation_bar(built: site.SiteReport) -> None:
    names = [page.name for page in built.pages]
    for name in names:
        nav = re.search(r'<nav class="site-nav">(.*?)</nav>', page_text(built, name), re.DOTALL)
        assert nav is not None, name
        assert re.findall(r'href="([^"]+)"', nav.group(1)) == names, name
        assert nav.group(1).count("class=current") == 1, name


def element_ids(text: str) -> set[str]:
    return {html.unescape(value) for value in re.findall(r'\s(?:id|name)="([^"]*)"', text)}


def test_every_internal_href_and_src_resolves_to_a_file_and_an_element(built: site.SiteReport) -> None:
    checked = 0
    for page in built.out.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for url in map(html.unescape, re.findall(r'\s(?:href|src)="([^"]*)"', text)):
            if re.match(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)", url):
                continue  # external (MathJax, badges) or data: URIs
            path, _, fragment = url.partition("#")
            target = built.out / urllib.parse.unquote(path) if path else page
            assert target.is_file(), f"{page.name}: {url} -> no file {target}"
            if fragment and target.suffix == ".html":
                # as a browser looks it up: the fragment as written, then percent-decoded (nbconvert writes
                # non-ASCII heading ids percent-encoded)
                ids = element_ids(target.read_text(encoding="utf-8"))
                assert fragment in ids or urllib.parse.unquote(fragment) in ids, f"{page.name}: {url}: no such id"
            checked += 1
    assert checked > 50  # navigation bars alone give 10 per page


def test_readme_figure_is_copied_into_the_site(built: site.SiteReport) -> None:
    linked = re.findall(r'<img[^>]+src="(figures/[^"]+)"', page_text(built, "index.html"))
    assert linked, "README shows a figure"
    for src in linked:
        assert (built.out / src).read_bytes() == (REPO / src).read_bytes()


def test_cli_refuses_a_missing_outputs_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        site.main(["--outputs", str(tmp_path / "nope"), "--out", str(tmp_path / "site")])
    assert excinfo.value.code == 2
    assert "make reproduce" in capsys.readouterr().err


def test_a_folder_not_built_by_the_command_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(site.SiteFolderError, match="not built by"):
        site.build_site(REPO, tmp_path / "outputs", out)
    assert (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(site.SiteFolderError, match="repository"):
        site.build_site(REPO, tmp_path / "outputs", REPO)


def test_a_previous_site_is_replaced(built: site.SiteReport, tmp_path: Path) -> None:
    out = tmp_path / "site"
    shutil.copytree(built.out, out)
    (out / "stale.html").write_text("from an older build")
    report = site.build_site(REPO, tmp_path / "no-outputs", out)
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
    assert report.unexecuted == [f"notebooks/{stem}.ipynb" for stem in SUITE]


# -- in a real browser ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def served(built: site.SiteReport) -> Iterator[str]:
    """The built site over HTTP on loopback (a thread), as its base URL."""
    handler = functools.partial(QuietHandler, directory=str(built.out))
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.browser
def test_site_in_chromium_every_link_works_and_images_render(
    built: site.SiteReport, served: str, chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch_chromium(playwright, chromium, tmp_path / "profile")
        # offline: only the loopback server answers (nbconvert's MathJax / require.js CDN requests are refused)
        context.route(
            "**/*",
            lambda route: route.continue_() if LOOPBACK in route.request.url else route.abort(),
        )
        try:
            page = context.new_page()
            page.goto(served + "index.html")
            nav = page.eval_on_selector_all("nav.site-nav a", "links => links.map(a => a.href)")
            assert [url.rsplit("/", 1)[1] for url in nav] == [p.name for p in built.pages]
            queue, seen, fragments = [served + "index.html"], set(), set()
            while queue:
                address = queue.pop()
                if address in seen:
                    continue
                seen.add(address)
                response = page.goto(address)
                assert response is not None and response.status == 200, address
                assert page.title().startswith("wsol-repro · "), address
                # every image on the page rendered (README's figure, the notebooks' embedded plots)
                broken = page.eval_on_selector_all(
                    "img",
                    "(imgs, base) => imgs.filter(i => i.src.startsWith(base) || i.src.startsWith('data:'))"
                    ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))",
                    served,
                )
                assert broken == [], f"{address}: images not rendered: {broken}"
                for link in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
                    if link.startswith(served):
                        target, _, fragment = link.partition("#")
                        queue.append(target)
                        fragments.update([(target, fragment)] if fragment else [])
                page.screenshot(path=str(tmp_path / f"{address.rsplit('/', 1)[1]}.png"))
            assert {served + p.name for p in built.pages} <= seen
            for target, fragment in sorted(fragments):  # every #anchor names an element of its page
                if page.url != target:
                    page.goto(target)
                assert page.evaluate(HAS_ELEMENT, fragment), f"{target}#{fragment}: no such element"
            page.goto(served + "index.html")
            widths = page.eval_on_selector_all("main img[src^='figures/']", "imgs => imgs.map(i => i.naturalWidth)")
            assert widths and min(widths) > 0
            page.goto(served + f"{EXECUTED}.html")
            plot = page.eval_on_selector_all("img[src^='data:image/png']", "imgs => imgs.map(i => i.naturalWidth)")
            assert plot and min(plot) > 0
            page.screenshot(path=str(tmp_path / "executed_notebook.png"), full_page=False)
        finally:
            context.close()
