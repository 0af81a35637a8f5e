"""The explorer in a real browser: JupyterLab on loopback + Debian's headless Chromium through Playwright.

Opens ``notebooks/00_explore.ipynb`` (a copy parameterized with a tiny trained run), runs all cells, moves the
delta slider with the keyboard and checks that the displayed accuracy / IoU change to what
:func:`wsol_utils.engine.evaluate` computes for the new delta. Saves ``docs/explorer_screenshot.png``
(outside figures/, which holds only what ``make reproduce`` writes).
Skipped, with the reason, when no system Chromium or no Playwright is installed
(``make browser`` installs Debian's chromium).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from browser_support import JupyterLabServer, launch_chromium, require_chromium, train_tiny_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # JupyterLab + Chromium + a whole notebook: make test-slow

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "00_explore.ipynb"
SCREENSHOT = REPO / "docs" / "explorer_screenshot.png"
START_DELTA, END_DELTA, TAU, SAMPLE, IMAGE = 0.5, 0.7, 0.6, 32, 2
ARROW_STEPS = round((END_DELTA - START_DELTA) / 0.05)  # the slider's step is 0.05
KERNEL_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 300_000  # kernel start, imports and all cells on a loaded 2-core machine


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.getbasetemp() / "widget-runs")


def parameterized_copy(run: Path, root: Path) -> Path:
    """``00_explore.ipynb`` copied into ``root`` with the test's parameters injected (as papermill does)."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(
        load_notebook_node(str(NOTEBOOK)),
        {
            "RUN_DIR": str(run),
            "IMAGE_INDEX": IMAGE,
            "DELTA": START_DELTA,
            "TAU": TAU,
            "SAMPLE_SIZE": SAMPLE,
            "DEVICE": "cpu",
            "COMPARE_RUN_DIRS": [str(run)],
            "FIGURES_DIR": str(root / "figures"),
            "RUNS_DIR": str(root / "runs"),
        },
    )
    path = root / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def library_numbers(run: Path, delta: float) -> tuple[float, float]:
    """Fused GT-known loc accuracy over the sample and the fused IoU of the image, from the engine."""
    from wsol_utils.engine import evaluate

    result = evaluate(run, delta=delta, tau=TAU, limit=SAMPLE, wsoleval=False, progress=False, cache_maps=False)
    return result.summary["branches"]["fused"]["gt_known_loc_acc"], float(result.records["fused_iou"].loc[IMAGE])


def shown_numbers(page) -> tuple[float, float]:
    stats = page.locator(".wsol-explorer-stats").first
    accuracy = stats.locator('.wsol-acc[data-branch="fused"]').get_attribute("data-value")
    iou = stats.locator('.wsol-iou[data-branch="fused"]').get_attribute("data-value")
    return float(accuracy), float(iou)


def wait_for_idle_kernel(page) -> None:
    """Wait until the status bar says the kernel is idle (started, or done with every queued callback)."""
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=RUN_TIMEOUT_MS)


def run_all_cells(page) -> None:
    """Wait for the kernel, then Run > Run All Cells (accepting a kernel dialog if one shows up)."""
    wait_for_idle_kernel(page)
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():
        dialog.first.click()
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def move_delta_slider(page, steps: int) -> None:
    """Focus the explorer's delta slider handle and press the right arrow ``steps`` times."""
    slider = page.locator(".wsol-explorer .widget-slider", has_text="delta").first
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    for _ in range(steps):
        handle.press("ArrowRight")


def save_screenshot(page, path: Path) -> None:
    """Scroll the explorer to the top, hide the file browser, screenshot atomically to ``path``."""
    page.locator(".wsol-explorer").first.evaluate("el => el.scrollIntoView({block: 'start'})")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.tmp.png")
    page.screenshot(path=str(temp))
    os.replace(temp, path)


def test_delta_slider_updates_the_shown_accuracy_in_jupyterlab(chromium, tiny_run, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    root = tmp_path / "lab"
    root.mkdir()
    parameterized_copy(tiny_run, root)
    expected_start, expected_end = library_numbers(tiny_run, START_DELTA), library_numbers(tiny_run, END_DELTA)
    with JupyterLabServer(root, tmp_path / "jupyter-state") as server, sync_playwright() as playwright:
        context = launch_chromium(playwright, chromium, tmp_path / "chromium-profile")
        page = context.new_page()
        try:
            page.goto(f"{server.url}/lab/tree/{NOTEBOOK.name}")
            page.locator(".jp-NotebookPanel").first.wait_for(timeout=KERNEL_TIMEOUT_MS)
            page.keyboard.press("Control+b")  # hide the left sidebar: more room for the explorer
            run_all_cells(page)
            stats = page.locator(".wsol-explorer-stats").first
            stats.wait_for(timeout=RUN_TIMEOUT_MS)
            assert stats.get_attribute("data-delta") == str(START_DELTA)
            assert shown_numbers(page) == expected_start
            move_delta_slider(page, ARROW_STEPS)
            page.wait_for_function(
                f"() => document.querySelector('.wsol-explorer-stats')?.dataset.delta === '{END_DELTA}'",
                timeout=RUN_TIMEOUT_MS,
            )
            text = stats.inner_text()
            assert f"delta {END_DELTA:.2f}" in text and f"GT-known loc (n={SAMPLE})" in text
            assert shown_numbers(page) == expected_end
            assert f"fused {expected_end[0]:.1f}%" in text and f"fused {expected_end[1]:.2f}" in text
            # the static cells ran too (the last one writes the comparison figure)
            page.wait_for_function(
                "() => ![...document.querySelectorAll('.jp-InputArea-prompt')].some(p => p.textContent.includes('*'))",
                timeout=RUN_TIMEOUT_MS,
            )
            wait_for_idle_kernel(page)
            save_screenshot(page, SCREENSHOT)
        except Exception as err:
            page.screenshot(path=str(tmp_path / "failure.png"))
            raise AssertionError(
                f"{err}\n(page at {tmp_path / 'failure.png'}; JupyterLab log tail:\n{server.log_tail()})"
            ) from err
        finally:
            context.close()
    print(
        f"browser test took {time.perf_counter() - started:.1f} s "
        f"(start delta {START_DELTA}: fused {expected_start}; end delta {END_DELTA}: fused {expected_end})"
    )
