"""``python -m wsol_utils reproduce``: run the notebook suite with papermill and regenerate ``figures/``.

The five notebooks run in reading order (``01`` .. ``05``), each in its own kernel with the notebook
folder as working directory. Executed copies go to ``outputs/`` (``outputs/smoke/`` in smoke mode),
stripped of volatile metadata; tables (CSV + Markdown) and figures (PNG) go to ``figures/`` (smoke
mode: ``outputs/smoke/figures/``, so a CI run never touches the committed figures). Trained models
are shared between notebooks through the engine's run cache (``runs/``).

A failing cell stops the run: the cell index, the exception and the path of the executed copy
(which shows the failing cell with its traceback) are printed, and the exit status is 1.

SIGINT (Ctrl-C) and SIGTERM stop the run cleanly: every notebook kernel (and each ``--jobs`` lane, which runs in
its own session and is handed the signal) is ended, the executed copy of the notebook that was running is renamed
``<name>.interrupted.ipynb``, and the exit status is 130 (SIGINT) or 143 (SIGTERM) with one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsol_utils.base.allocator import ENV as ALLOCATOR_ENV
from wsol_utils.studies.provenance import NOTEBOOK_ENV

#: The suite, in reading order (file stems in ``notebooks/``).
SUITE: tuple[str, ...] = (
    "01_cam_equivalence",
    "02_acol_training",
    "03_hclnet_complementary_maps",
    "04_fusion_ablation",
    "05_threshold_sweep",
    "06_when_erasing_helps",
    "07_posthoc_cams",
)
REPO_ROOT = Path(__file__).resolve().parents[2]
#: ``--backbone`` sets this for the notebook kernels; :meth:`wsol_utils.ui.suite.Suite.config` reads it on real data
#: (the names of ``suite.BACKBONE_ENV`` / ``suite.REAL_DATA_BACKBONES``, kept here so the CLI starts without torch).
BACKBONE_ENV = "WSOL_BACKBONE"
BACKBONES: tuple[str, ...] = ("vgg16", "resnet50")
#: ``--fp32`` sets this to ``fp32`` for the suite's runs and the notebook kernels: the default of
#: ``RunConfig.precision`` (the name of ``wsol_utils.engine.precision.PRECISION_ENV``, kept here likewise).
PRECISION_ENV = "WSOL_PRECISION"
#: ``--kernels`` sets this for the suite's runs and the notebook kernels: the default of ``RunConfig.kernels`` (the
#: name of ``wsol_utils.engine.precision.KERNELS_ENV``, kept here likewise).
KERNELS_ENV = "WSOL_KERNELS"
VOLATILE_NOTEBOOK_METADATA = ("papermill", "widgets")
VOLATILE_CELL_METADATA = ("papermill", "execution", "collapsed", "scrolled")


@dataclass
class SuitePaths:
    """Where the suite reads notebooks from and writes everything to (all absolute)."""

    notebooks: Path
    outputs: Path  # executed notebook copies
    figures: Path  # tables and figures
    runs: Path  # the engine's run cache

    @classmethod
    def resolve(
        cls,
        *,
        smoke: bool,
        notebooks_dir: str | Path | None = None,
        output_dir: str | Path | None = None,
        figures_dir: str | Path | None = None,
        runs_dir: str | Path | None = None,
    ) -> SuitePaths:
        """Defaults: ``notebooks/``, ``outputs/`` and ``figures/`` of the checkout, ``runs/``;
        in smoke mode ``outputs/smoke`` and ``outputs/smoke/figures``."""
        notebooks = Path(notebooks_dir or REPO_ROOT / "notebooks").resolve()
        root = notebooks.parent
        outputs = Path(output_dir or root / "outputs").resolve()
        if smoke:
            outputs = outputs / "smoke"
        default_figures = outputs / "figures" if smoke else root / "figures"
        return cls(
            notebooks=notebooks,
            outputs=outputs,
            figures=Path(figures_dir or default_figures).resolve(),
            runs=Path(runs_dir or root / "runs").resolve(),
        )


@dataclass
class NotebookResult:
    name: str
    ok: bool
    seconds: float
    executed: Path
    error: str | None = None
    artifacts: list[Path] = field(default_factory=list)


def strip_volatile_metadata(notebook: Any) -> Any:
    """Remove papermill timings, execution timestamps and widget state from a notebook, in place.

    ``notebook`` is an ``nbformat.NotebookNode``; outputs are kept. Returns the same object.
    """
    for key in VOLATILE_NOTEBOOK_METADATA:
        notebook.metadata.pop(key, None)
    for cell in notebook.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    return notebook


def strip_notebook_file(path: Path) -> None:
    """Strip volatile metadata from the notebook file at ``path`` (atomic rewrite)."""
    import nbformat

    from wsol_utils.base.atomic import write_atomic

    notebook = strip_volatile_metadata(nbformat.read(path, as_version=4))
    write_atomic(path, lambda temp: nbformat.write(notebook, str(temp)))


def select_notebooks(only: Sequence[str] | None, suite: Sequence[str] = SUITE) -> list[str]:
    """Notebook stems to run: all of ``suite``, or those matching ``only`` by number or name
    (``["02", "04_fusion_ablation"]``), kept in suite order."""
    if not only:
        return list(suite)
    unknown = [key for key in only if not any(name == key or name.split("_")[0] == key for name in suite)]
    if unknown:
        raise ValueError(
            f"--only {' '.join(unknown)}: no such notebook; choose from "
            f"{', '.join(name.split('_')[0] for name in suite)} or full names {list(suite)}"
        )
    return [name for name in suite if name in only or name.split("_")[0] in only]


def notebook_parameters(args: argparse.Namespace, paths: SuitePaths) -> dict[str, Any]:
    """The papermill parameters every notebook of the suite takes (its ``parameters`` cell)."""
    return {
        "DATASET": args.dataset,
        "DATA_ROOT": str(Path(args.data_root).resolve()) if args.data_root else None,
        "EPOCHS": args.epochs,
        "DEVICE": args.device,
        "SMOKE": bool(args.smoke),
        "RUNS_DIR": str(paths.runs),
        "FIGURES_DIR": str(paths.figures),
        "PROGRESS": False,
    }


def _snapshot(folder: Path) -> dict[Path, int]:
    if not folder.is_dir():
        return {}
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def _changed(before: Mapping[Path, int], after: Mapping[Path, int]) -> list[Path]:
    return sorted(path for path, mtime in after.items() if before.get(path) != mtime)


def kernel_log_path(paths: SuitePaths, name: str) -> Path:
    """Where the kernel's and papermill's own stderr chatter of notebook ``name`` goes."""
    return paths.outputs / "logs" / f"{name}.stderr.log"


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Redirect file descriptor 2 (inherited by the kernel process) to ``path`` for the duration.

    Keeps the progress lines readable: kernel start-up warnings and papermill's logging go to the log
    file; cell errors still reach the user through :class:`PapermillExecutionError` and the executed copy.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("w", encoding="utf-8") as log:
            os.dup2(log.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


#: Seconds a lane or kernel has to end after SIGTERM before it is killed.
END_GRACE_S = 5.0
INTERRUPTED_SUFFIX = ".interrupted.ipynb"


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run; ``message`` says what was stopped and where its partial output is."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class InterruptWatch:
    """SIGINT and SIGTERM, handled without raising at arbitrary points.

    While :meth:`watching` is active (main thread only), the first of them records its number in :attr:`signum` and
    calls :attr:`on_signal` with it (end the kernels, or hand the signal to the lanes); later ones are ignored, so the
    cleanup runs to its end (each step is bounded by :data:`END_GRACE_S`). The runner checks :meth:`check` at safe
    points: before each notebook, at each cell start, after papermill returns.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.on_signal: Callable[[int], None] = lambda signum: None

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum
            self.on_signal(signum)

    @contextlib.contextmanager
    def watching(self, on_signal: Callable[[int], None]) -> Iterator[InterruptWatch]:
        """Handle SIGINT and SIGTERM for the duration (a no-op outside the main thread); restores the old handlers."""
        self.signum, self.on_signal = None, on_signal
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {number: signal.signal(number, self._handle) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def check(self, what: str = "") -> None:
        """Raise :class:`Interrupted` if a signal came (``what``: what it stopped, for the message)."""
        if self.signum is not None:
            raise Interrupted(self.signum, what or "stopped between notebooks")


INTERRUPT = InterruptWatch()


def end_child_processes(pid: int | None = None) -> None:
    """End every descendant of process ``pid`` (default: this one): notebook kernels start in their own sessions,
    so a process-group signal misses them, and their own children (data-loader workers) too. SIGTERM, then SIGKILL
    for those still alive after :data:`END_GRACE_S`. Needs ``psutil`` (a test dependency); without it a kernel ends
    on its own within a second of its parent's exit (ipykernel polls its parent)."""
    try:
        import psutil
    except ImportError:
        return
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:  # pid is gone
        return
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=END_GRACE_S)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=END_GRACE_S)


def _stop_at_cell_start(**_: Any) -> None:
    """nbclient's ``on_cell_start`` hook: a signal that came while the kernel was starting stops at the next cell."""
    INTERRUPT.check("stopped at a cell start")


def mark_interrupted(executed: Path) -> Path | None:
    """Rename the partial executed copy ``<name>.ipynb`` to ``<name>.interrupted.ipynb``; ``None`` when there is
    none."""
    if not executed.is_file():
        return None
    marked = executed.with_name(executed.stem + INTERRUPTED_SUFFIX)
    os.replace(executed, marked)
    return marked


def run_notebook(name: str, paths: SuitePaths, parameters: Mapping[str, Any]) -> NotebookResult:
    """Execute ``paths.notebooks/name.ipynb`` into ``paths.outputs`` and report what it wrote."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = paths.notebooks / f"{name}.ipynb"
    if not source.is_file():
        raise FileNotFoundError(
            f"notebook {source} not found; run from a checkout of wsol-repro or pass --notebooks-dir"
        )
    executed = paths.outputs / f"{name}.ipynb"
    executed.with_name(name + INTERRUPTED_SUFFIX).unlink(missing_ok=True)  # a mark left by an earlier run
    before = _snapshot(paths.figures)
    start = time.perf_counter()
    error = None
    previous = os.environ.get(NOTEBOOK_ENV)
    os.environ[NOTEBOOK_ENV] = name  # the kernel inherits it: the notebook's name goes into PROVENANCE.json
    try:
        with stderr_to(kernel_log_path(paths, name)):
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=dict(parameters),
                cwd=str(paths.notebooks),
                progress_bar=False,
                log_output=False,
                on_cell_start=_stop_at_cell_start,
            )
    except PapermillExecutionError as exc:
        error = f"cell {exc.cell_index} (execution count {exc.exec_count}) raised {exc.ename}: {exc.evalue}"
    except Exception:  # a kernel ended by the signal handler dies mid-cell (nbclient's DeadKernelError, ...)
        if INTERRUPT.signum is None:
            raise
    finally:
        if previous is None:
            os.environ.pop(NOTEBOOK_ENV, None)
        else:
            os.environ[NOTEBOOK_ENV] = previous
    _raise_if_interrupted(name, executed)
    seconds = time.perf_counter() - start
    if executed.is_file():
        strip_notebook_file(executed)
    return NotebookResult(
        name=name,
        ok=error is None,
        seconds=seconds,
        executed=executed,
        error=error,
        artifacts=_changed(before, _snapshot(paths.figures)),
    )


def _raise_if_interrupted(name: str, executed: Path) -> None:
    """After a notebook: on a signal, end what is left of its kernel, mark its partial copy, raise Interrupted."""
    if INTERRUPT.signum is None:
        return
    end_child_processes()
    marked = mark_interrupted(executed)
    where = f"its partial copy is {_relative(marked)}" if marked else "it wrote no executed copy"
    INTERRUPT.check(f"stopped {name} and its kernel; {where}")


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def summary_lines(results: Sequence[NotebookResult], paths: SuitePaths) -> list[str]:
    """The final report: executed copies and every artifact each notebook wrote."""
    lines = [f"Executed notebooks in {_relative(paths.outputs)}/:"]
    lines += [f"  {_relative(result.executed)}" for result in results]
    artifacts = [path for result in results for path in result.artifacts]
    lines.append(f"Tables and figures in {_relative(paths.figures)}/ ({len(artifacts)} files):")
    lines += [f"  {_relative(path)}" for path in artifacts]
    lines.append(f"Trained runs cached in {_relative(paths.runs)}/")
    return lines


#: The synthetic set's sample grid that a full ``reproduce`` writes beside the notebooks' figures.
SAMPLES = "synthetic_samples.png"

#: Groups of notebooks that may run in parallel (``--jobs``); within a group the order is the suite's and later
#: notebooks reuse the earlier ones' runs from the cache. A whole ``reproduce`` trains every run first
#: (:func:`pretrain_suite`), so the lanes only evaluate; with ``--only`` a lane trains what it needs, and a run two
#: lanes need is trained once (the other waits on its lock). 07 scores the main instrument's first five seeds, which
#: are also the regime map's 8 px / 7 px cell (06), so it runs after 06.
LANES: tuple[tuple[str, ...], ...] = (
    (
        "01_cam_equivalence",
        "02_acol_training",
        "03_hclnet_complementary_maps",
        "04_fusion_ablation",
        "05_threshold_sweep",
    ),
    ("06_when_erasing_helps", "07_posthoc_cams"),
)


def split_lanes(names: Sequence[str], jobs: int) -> list[list[str]]:
    """``names`` split into the :data:`LANES` that have work, when ``jobs > 1``; else one lane of all of them.
    A notebook outside every lane joins the first lane."""
    if jobs <= 1:
        return [list(names)]
    lanes = [[name for name in names if name in lane] for lane in LANES]
    lanes[0] += [name for name in names if not any(name in lane for lane in LANES)]
    return [lane for lane in lanes if lane]


def lane_train_jobs(lanes: int) -> str:
    """``WSOL_TRAIN_JOBS`` of each of ``lanes`` parallel lanes: the caller's own setting, else this process's cores
    shared among the lanes (at least 1), so that all lanes' one-thread training workers together fill the cores
    without oversubscribing them (issue 19; the numbers do not depend on it)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return os.environ.get("WSOL_TRAIN_JOBS") or str(max(1, cores // max(1, lanes)))


def run_lanes(lanes: Sequence[Sequence[str]], argv: Sequence[str], jobs: int, outputs: Path | None = None) -> int:
    """Run each lane as ``python -m wsol_utils reproduce ... --only <lane> --jobs 1`` in its own process, at most
    ``jobs`` at a time, each with one CPU thread (``OMP_NUM_THREADS=1``: the small models gain little from a second
    thread, and a fixed thread count keeps the numbers independent of the machine's core count). Output lines are
    prefixed with the lane. Returns 0 when every lane succeeded, else 1.

    Each lane runs in its own session; a SIGINT / SIGTERM to this process is handed to every lane's process group
    (each lane ends its kernels and marks its partial notebook), lanes still running :data:`END_GRACE_S` later are
    killed with what they started, and :class:`Interrupted` is raised naming the marked copies in ``outputs``."""
    import subprocess

    threads, train_jobs = "1", lane_train_jobs(len(lanes))
    base = _without_option(_without_option(argv, "--only", takes_values=True), "--jobs", takes_values=False)
    print(
        f"Reproducing in {len(lanes)} parallel lanes ({threads} CPU thread(s) each): "
        + "; ".join(" ".join(lane) for lane in lanes)
    )
    start = time.perf_counter()
    processes: list[subprocess.Popen[str]] = []
    INTERRUPT.on_signal = lambda signum: _signal_lanes(processes, signum)  # each lane ends its own kernels
    for lane in lanes:
        INTERRUPT.check("stopped while starting the lanes")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "wsol_utils", "reproduce", *base, "--jobs", "1", "--only", *lane],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": threads, "WSOL_TRAIN_JOBS": train_jobs},
                start_new_session=True,  # the terminal's Ctrl-C reaches the lanes only through this process
            )
        )

    def relay(index: int, stream: Any) -> None:
        for line in stream:
            print(f"[lane {index + 1}] {line}", end="", flush=True)

    relays = [threading.Thread(target=relay, args=(i, p.stdout)) for i, p in enumerate(processes)]
    for thread in relays:
        thread.start()
    codes = _wait_for_lanes(processes)
    for thread in relays:
        thread.join(timeout=END_GRACE_S)
    if INTERRUPT.signum is not None:
        candidates = [outputs / f"{name}{INTERRUPTED_SUFFIX}" for lane in lanes for name in lane] if outputs else []
        marked = [path for path in candidates if path.is_file()]
        where = f"; partial copies: {', '.join(map(_relative, marked))}" if marked else ""
        INTERRUPT.check(f"stopped {len(processes)} lane(s) and their kernels{where}")
    print(f"All lanes done in {time.perf_counter() - start:.0f} s (exit codes {codes}).")
    return 0 if all(code == 0 for code in codes) else 1


def _signal_lanes(processes: Sequence[Any], signum: int) -> None:
    """Hand ``signum`` to every running lane's process group (each lane leads its own session)."""
    for process in processes:
        if process.returncode is not None:  # reaped: its group id may belong to someone else by now
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)


def _wait_for_lanes(processes: Sequence[Any]) -> list[int]:
    """Wait for every lane; after a signal, end those still running :data:`END_GRACE_S` later: their kernels first
    (once a lane is gone they are no longer its descendants), then the lane's process group. Returns exit codes."""
    deadline: float | None = None
    while any(process.poll() is None for process in processes):
        if INTERRUPT.signum is not None:
            deadline = deadline or time.monotonic() + END_GRACE_S
            if time.monotonic() > deadline:
                for process in processes:
                    if process.poll() is None:
                        end_child_processes(process.pid)
                        _signal_lanes([process], signal.SIGKILL)
        time.sleep(0.05)
    return [int(process.returncode) for process in processes]


def _without_option(argv: Sequence[str], option: str, *, takes_values: bool) -> list[str]:
    """``argv`` without ``option`` (``--opt v`` or ``--opt=v``) and its value(s): all values up to the next flag
    when ``takes_values``, else the one value that follows it."""
    out: list[str] = []
    skipping = False
    for arg in argv:
        if arg == option or arg.startswith(option + "="):
            skipping = takes_values or arg == option
            continue
        if skipping and not arg.startswith("-"):
            if not takes_values:
                skipping = False
            continue
        skipping = False
        out.append(arg)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wsol_utils reproduce",
        description="Run the notebook suite (01..06) with papermill; write executed copies to outputs/ "
        "and tables/figures to figures/.",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny data and 1 epoch: the whole suite in a few minutes; writes to "
        "outputs/smoke/ and never touches figures/",
    )
    parser.add_argument(
        "--dataset",
        default="synthetic",
        choices=("synthetic", "cub", "wsoleval"),
        help="synthetic (default), cub or wsoleval (a wsoleval metadata folder: CUB, ILSVRC, OpenImages)",
    )
    parser.add_argument("--data-root", default=None, help="data set folder (cub / wsoleval)")
    parser.add_argument(
        "--backbone",
        choices=BACKBONES,
        default=None,
        help="real data: the backbone of the papers' setting, vgg16 (default) or resnet50 (sets WSOL_BACKBONE for "
        "the notebook kernels)",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: the engine's default for the data set)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="train in float32 even where the default precision would use bf16 autocast on the CPU (sets "
        "WSOL_PRECISION=fp32 for the suite's runs and the notebook kernels)",
    )
    parser.add_argument(
        "--kernels",
        choices=("auto", "torch", "fused"),
        default=None,
        help="how float32 CPU runs train the small backbone: torch (PyTorch's layers, the default), fused (the fused "
        "C kernels, about 1.8x faster a run; other float rounding, see README) or auto (fused where the CPU has "
        "AVX-512F); sets WSOL_KERNELS for the suite's runs and the notebook kernels",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NN",
        default=None,
        help="run only these notebooks, by number or name (e.g. --only 02 04)",
    )
    parser.add_argument("--output-dir", default=None, help="executed notebooks (default: outputs/)")
    parser.add_argument(
        "--figures-dir", default=None, help="tables and figures (default: figures/, smoke: outputs/smoke/figures/)"
    )
    parser.add_argument("--runs-dir", default=None, help="the engine's run cache (default: runs/)")
    parser.add_argument("--notebooks-dir", default=None, help="where the notebooks are (default: notebooks/)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="run independent groups of notebooks (LANES) in N parallel processes, the CPU threads split among "
        "them (OMP_NUM_THREADS); 1 (default) runs them one after the other in this process",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never download ImageNet weights (sets WSOL_OFFLINE=1 for the notebook kernels)",
    )
    parser.add_argument(
        "--allow-random-init",
        action="store_true",
        help="smoke tests only: let runs on real data start from a random VGG16 / ResNet50 when "
        "the ImageNet weights are missing (sets WSOL_ALLOW_RANDOM_INIT=1 for the suite)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; return 0 when every notebook ran, 1 on the first failing notebook, 130 / 143 after SIGINT /
    SIGTERM (one line on stderr: what was stopped, where the partial copy is)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with INTERRUPT.watching(on_signal=lambda signum: end_child_processes()):
        try:
            return _run(parser, args, argv)
        except Interrupted as stop:
            print(f"reproduce: interrupted by {signal.Signals(stop.signum).name}: {stop}", file=sys.stderr, flush=True)
            return stop.exit_status


def pretrain_suite(args: argparse.Namespace, paths: SuitePaths) -> None:
    """Train every run the notebooks need in one pool of workers before any notebook starts
    (:func:`wsol_utils.ui.experiments.train_suite_runs`): lanes of notebooks would otherwise each train their own runs
    with a share of the cores and wait for each other. SIGINT / SIGTERM end the workers; finished runs stay cached
    and an unfinished one resumes from its last epoch on the next call."""
    from wsol_utils.ui.experiments import planned_runs, train_suite_runs
    from wsol_utils.ui.suite import Suite

    suite = Suite.from_parameters(
        args.dataset,
        str(Path(args.data_root).resolve()) if args.data_root else None,
        args.epochs,
        args.device,
        bool(args.smoke),
        str(paths.runs),
        str(paths.figures),
    )
    start = time.perf_counter()
    print(f"Training the suite's runs in one pool: {len(planned_runs(suite))} runs, then ACoL at the val-chosen delta")
    previous, INTERRUPT.on_signal = INTERRUPT.on_signal, lambda signum: end_child_processes()
    try:
        val_delta = train_suite_runs(suite)
    except Exception:
        INTERRUPT.check("stopped while training the suite's runs (finished runs are cached; the rest resume)")
        raise
    finally:
        INTERRUPT.on_signal = previous
    INTERRUPT.check("stopped while training the suite's runs (finished runs are cached; the rest resume)")
    print(f"Trained in {time.perf_counter() - start:.0f} s (delta chosen on val: {val_delta:g}).")


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """:func:`main` after parsing, with SIGINT / SIGTERM watched."""
    # the notebook kernels inherit this process's environment (wsol_utils.nets.backbones / the suite read these)
    for name, value in ALLOCATOR_ENV.items():  # glibc keeps freed memory for reuse (wsol_utils.base.allocator)
        os.environ.setdefault(name, value)
    if args.offline:
        os.environ["WSOL_OFFLINE"] = "1"
    if args.allow_random_init:
        os.environ["WSOL_ALLOW_RANDOM_INIT"] = "1"
    if args.dataset != "synthetic" and not args.data_root:
        parser.error(f"--dataset {args.dataset} needs --data-root (the data set folder)")
    if args.backbone is not None:
        if args.dataset == "synthetic":
            parser.error("--backbone is for real data (--dataset cub / wsoleval); the synthetic suite uses its own")
        os.environ[BACKBONE_ENV] = args.backbone
    if args.fp32:
        os.environ[PRECISION_ENV] = "fp32"
    if args.kernels is not None:
        os.environ[KERNELS_ENV] = args.kernels
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: give a positive number of epochs")
    try:
        names = select_notebooks(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    paths = SuitePaths.resolve(
        smoke=args.smoke,
        notebooks_dir=args.notebooks_dir,
        output_dir=args.output_dir,
        figures_dir=args.figures_dir,
        runs_dir=args.runs_dir,
    )
    paths.outputs.mkdir(parents=True, exist_ok=True)
    paths.figures.mkdir(parents=True, exist_ok=True)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give a positive number of processes")
    if args.dataset == "synthetic" and args.only is None:  # the whole suite: also the data set's sample grid
        from wsol_utils.data.synthetic import SyntheticConfig
        from wsol_utils.ui.data_cli import save_samples

        paths.figures.mkdir(parents=True, exist_ok=True)
        print(
            f"Samples of the synthetic set: {_relative(Path(save_samples(SyntheticConfig(), paths.figures / SAMPLES)))}"
        )
    if args.only is None:  # the whole suite: train every run in one pool first, so both cores stay busy
        pretrain_suite(args, paths)
    lanes = split_lanes(names, args.jobs)
    if len(lanes) > 1:
        return run_lanes(lanes, list(argv if argv is not None else sys.argv[1:]), args.jobs, paths.outputs)
    parameters = notebook_parameters(args, paths)
    mode = "smoke" if args.smoke else "full"
    backbone = "" if args.dataset == "synthetic" else f", backbone {os.environ.get(BACKBONE_ENV) or BACKBONES[0]}"
    print(f"Reproducing {len(names)} notebook(s) on {args.dataset!r}{backbone} ({mode} mode)")
    results: list[NotebookResult] = []
    total = time.perf_counter()
    for index, name in enumerate(names, start=1):
        INTERRUPT.check()
        print(f"[{index}/{len(names)}] {name} ...", end=" ", flush=True)
        try:
            result = run_notebook(name, paths, parameters)
        except Interrupted:
            print("INTERRUPTED", flush=True)
            raise
        results.append(result)
        if not result.ok:
            print(f"FAILED ({result.seconds:.0f} s)")
            print(f"  {result.error}")
            print(f"  executed copy with the traceback: {_relative(result.executed)}")
            print(f"  kernel log: {_relative(kernel_log_path(paths, name))}")
            return 1
        print(f"ok ({result.seconds:.0f} s)")
    print(f"Done in {time.perf_counter() - total:.0f} s.")
    for line in summary_lines(results, paths):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
