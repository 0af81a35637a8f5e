"""What made each table and figure: the library's source hash, configs, seeds, date (``figures/PROVENANCE.json``).

Every file that :func:`wsol_utils.studies.tables.write_table` and :func:`wsol_utils.ui.viz.save_figure` write gets an
entry in the manifest :data:`MANIFEST_NAME` of its folder: ``{"<file name>": stamp}`` where a stamp
(:func:`stamp`) holds the :func:`source_hash` of the code that made it, the UTC date, the versions of Python
and the numeric libraries, the machine (:func:`machine`: CPU model, torch's CPU capability, compute dtype,
threads), the SHA-256 of the file's bytes, and whatever the caller passes (the notebook, the
runs with their configs, the seeds: :meth:`wsol_utils.ui.suite.Suite.provenance`).

:func:`check_figures` lists what is wrong with a folder of committed figures: a table or figure without an entry,
an entry without its file, a file changed since its entry was written, or an entry made by another library
source than the one on disk now. ``tests/test_provenance.py`` runs it on ``figures/`` (pytest marker
``figures``), so figures made by stale code cannot land. See figures/README.md; the notebook suite and its
tooling are described in docs/methods.md §5.

The source hash covers *code*, not text: each file is parsed and its syntax tree, without docstrings, is hashed
(:func:`file_digest`), so reformatting, comments and docstring edits keep figures current, any code change does
not. Standard library only, no git needed; torch is imported only by :func:`machine` (lazily, when a stamp is
made), and is optional there.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from wsol_utils.base.atomic import write_text_atomic

#: The manifest's file name, one per folder of tables and figures.
MANIFEST_NAME = "PROVENANCE.json"
#: Length of :func:`source_hash` (hex digits of a SHA-256).
HASH_LENGTH = 12
#: The package this module belongs to, and the checkout folder that holds it (and ``notebooks/``).
PACKAGE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = PACKAGE_DIR.parent
#: The notebooks' jupytext sources that are hashed with the package (relative to the checkout).
NOTEBOOK_GLOB = "notebooks/[0-9]*.py"
#: Files :func:`check_figures` expects an entry for (and names it skips).
CHECKED_SUFFIXES = (".csv", ".md", ".png")
UNCHECKED_NAMES = frozenset({"README.md"})
#: PNG text chunk that carries the source hash (:func:`png_metadata`).
PNG_HASH_KEY = "wsol_utils source"
#: Keys :func:`stamp` sets itself; a caller cannot pass them.
RESERVED_KEYS = frozenset({"source_hash", "source_scope", "date", "versions", "machine", "sha256"})
FIX = "run `make reproduce` and commit figures/"
#: Environment variable naming the running notebook (set by ``python -m wsol_utils reproduce`` for each kernel).
NOTEBOOK_ENV = "WSOL_NOTEBOOK"
#: Distribution names tried, in order, for each reported version (first one installed wins).
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "numpy": ("numpy",),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python-headless", "opencv-contrib-python"),
}

#: ``(path, mtime_ns, size) -> digest`` so that repeated stamps in one process parse each file once.
_DIGEST_CACHE: dict[tuple[str, int, int], str] = {}


# --------------------------------------------------------------------------------------------------
# The source hash
# --------------------------------------------------------------------------------------------------


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """Drop the docstring expression of the module and of every class and (async) function, in place."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = node.body[1:]
    return tree


def _canonical(value: object) -> str:
    """A text form of a syntax tree without positions, and without fields that are ``None`` or empty lists.

    Like ``ast.dump(tree, include_attributes=False)``, but the same on every Python from 3.10 on: 3.12 added
    empty ``type_params`` to functions and classes, and 3.13's ``ast.dump`` leaves out empty fields.
    """
    if isinstance(value, ast.AST):
        fields = []
        for name in value._fields:
            field = getattr(value, name, None)
            if field is None or (isinstance(field, list) and not field):
                continue
            fields.append(f"{name}={_canonical(field)}")
        return f"{type(value).__name__}({', '.join(fields)})"
    if isinstance(value, list):
        return "[" + ", ".join(_canonical(item) for item in value) + "]"
    return repr(value)


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of the code in the Python file ``path``: its syntax tree without docstrings, comments,
    formatting or positions. Raises ``ValueError`` naming the file when it is not valid Python. Any other file
    (the package's C source) is hashed as its bytes."""
    path = Path(path)
    info = path.stat()
    key = (str(path.resolve()), info.st_mtime_ns, info.st_size)
    if key not in _DIGEST_CACHE:
        source = path.read_bytes()
        if path.suffix != ".py":
            _DIGEST_CACHE[key] = hashlib.sha256(source).hexdigest()
            return _DIGEST_CACHE[key]
        try:
            tree = ast.parse(source, filename=str(path))
        except SyntaxError as error:
            raise ValueError(
                f"{path}: not valid Python, so its code cannot be hashed "
                f"(line {error.lineno}: {error.msg}); fix the file"
            ) from error
        canonical = _canonical(_strip_docstrings(tree))
        _DIGEST_CACHE[key] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return _DIGEST_CACHE[key]


def source_files(root: str | Path | None = None) -> tuple[list[Path], bool]:
    """The files :func:`source_hash` covers, sorted by their path relative to ``root``, and whether the
    notebooks were found.

    ``root`` is the checkout (default: the folder that holds this package); its ``wsol_utils/`` gives every
    ``*.py`` and ``*.c`` (at any depth, hidden files and folders skipped; the C source is compiled at install), its
    ``notebooks/[0-9]*.py`` the notebooks' jupytext sources. Without a ``notebooks/`` folder (an installed package)
    only the package is covered.
    """
    root = Path(root) if root is not None else DEFAULT_ROOT
    package = root / PACKAGE_DIR.name
    if not package.is_dir():
        raise FileNotFoundError(
            f"source_files(root={str(root)!r}): no {PACKAGE_DIR.name}/ folder there; "
            "give the checkout that holds the package"
        )
    files = [
        path
        for pattern in ("*.py", "*.c")
        for path in package.rglob(pattern)
        if not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]
    has_notebooks = (root / "notebooks").is_dir()
    if has_notebooks:
        files += [path for path in root.glob(NOTEBOOK_GLOB) if path.is_file()]
    return sorted(files, key=lambda path: path.relative_to(root).as_posix()), has_notebooks


def source_record(root: str | Path | None = None) -> dict[str, str]:
    """``{"source_hash": ..., "source_scope": ...}``: :func:`source_hash` and what it covers
    (``"wsol_utils + notebooks/[0-9]*.py"``, or ``"wsol_utils only (no notebooks/ folder beside the
    package)"`` outside a checkout)."""
    root = Path(root) if root is not None else DEFAULT_ROOT
    files, has_notebooks = source_files(root)
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0{file_digest(path)}\n".encode())
    scope = (
        f"{PACKAGE_DIR.name} + {NOTEBOOK_GLOB}"
        if has_notebooks
        else f"{PACKAGE_DIR.name} only (no notebooks/ folder beside the package)"
    )
    return {"source_hash": digest.hexdigest()[:HASH_LENGTH], "source_scope": scope}


def source_hash(root: str | Path | None = None) -> str:
    """12 hex digits of a SHA-256 over the code that makes the figures: every ``*.py`` and ``*.c`` of the package
    and the notebooks' ``notebooks/[0-9]*.py`` (:func:`source_files`), each as its path and :func:`file_digest`.

    Formatting, comments and docstrings do not change it; any change to the code, a renamed, added or removed
    file do. Pure (no git): a stray untracked ``*.py`` inside the package counts too.
    """
    return source_record(root)["source_hash"]


# --------------------------------------------------------------------------------------------------
# Stamps and the manifest
# --------------------------------------------------------------------------------------------------


def _version(distributions: Iterable[str]) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, str | None]:
    """Python's and the installed torch, torchvision, numpy and OpenCV versions (``None`` when missing);
    read from the installed distributions, nothing is imported."""
    return {"python": platform.python_version(), **{key: _version(names) for key, names in _DISTRIBUTIONS.items()}}


#: Where Linux names the CPU model (x86: ``model name``; some ARM kernels: ``Hardware`` / ``Processor``).
CPUINFO_PATH = Path("/proc/cpuinfo")
_CPUINFO_KEYS = ("model name", "hardware", "processor")
#: The compute dtype of the engine: fp32 on CPU, or (a run's ``precision`` ``"bf16"``) bf16 autocast of the training
#: forward; on CUDA ``torch.autocast`` (bf16 where supported, else fp16) around fp32 weights
#: (:func:`wsol_utils.engine.train.autocast_context`).
CPU_DTYPE = "float32 (cpu)"
#: fp32 training with the small backbone's fused CPU kernels (``RunConfig.kernels == "fused"``; docs/methods.md §4.5)
CPU_FUSED_DTYPE = "float32 (cpu), fused training kernels"
CPU_BF16_DTYPE = "float32 weights, training forward autocast bfloat16 (cpu)"
CUDA_DTYPE = "float32 weights, autocast {} (cuda)"


def cpu_model(cpuinfo: str | Path = CPUINFO_PATH) -> str | None:
    """The CPU's model name: the first ``model name`` line of ``cpuinfo`` (a ``/proc/cpuinfo`` text; else its
    ``Hardware`` or a non-numeric ``Processor`` line), else :func:`platform.processor`; ``None`` when neither
    says anything."""
    try:
        lines = Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    fields = [tuple(part.strip() for part in line.split(":", 1)) for line in lines if ":" in line]
    for key in _CPUINFO_KEYS:
        for name, value in fields:
            if name.lower() == key and value and not value.isdigit():
                return value
    return platform.processor() or None


def _torch() -> Any | None:
    """torch, imported now, or ``None`` when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def compute_dtype(devices: Iterable[str] = (), precisions: Iterable[str] = ()) -> str:
    """What the engine computed in on ``devices`` (run configs' ``device``: ``"auto"``, ``"cpu"``, ``"cuda:0"``...)
    with ``precisions`` (their resolved ``precision``, ``"fp32"`` or ``"bf16"``, or ``"fp32-fused"`` for fp32 runs
    with ``kernels="fused"``: :func:`run_compute`; a config without one is fp32): :data:`CUDA_DTYPE` with bfloat16
    or float16 when one of the devices is (or ``"auto"`` resolves to) CUDA; else on the CPU :data:`CPU_DTYPE` for
    fp32 runs, :data:`CPU_FUSED_DTYPE` for fused-kernel runs, :data:`CPU_BF16_DTYPE` for bf16 runs, joined by
    ``" + "`` when the runs mix them. Nothing known: :data:`CPU_DTYPE`."""
    names = {str(device) for device in devices}
    torch = _torch() if any(name == "auto" or name.startswith("cuda") for name in names) else None
    if torch is not None and torch.cuda.is_available():
        return CUDA_DTYPE.format("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    kinds = {str(precision) for precision in precisions} or {"fp32"}
    dtypes = (("fp32", CPU_DTYPE), ("fp32-fused", CPU_FUSED_DTYPE), ("bf16", CPU_BF16_DTYPE))
    return " + ".join(dtype for kind, dtype in dtypes if kind in kinds)


def machine(devices: Iterable[str] = (), precisions: Iterable[str] = ()) -> dict[str, Any]:
    """The machine a file was made on, for telling whether two runs can be bit-identical (``compare-figures``):
    ``cpu_model`` (:func:`cpu_model`), ``cpu_capability`` (``torch.backends.cpu.get_cpu_capability()``, e.g.
    ``"AVX512"``; ``None`` without torch), ``compute_dtype`` (:func:`compute_dtype` of ``devices`` and
    ``precisions``),
    ``torch_threads`` (``torch.get_num_threads()`` now; ``None`` without torch), ``omp_num_threads`` (the
    ``OMP_NUM_THREADS`` the lanes set, ``None`` when unset) and ``platform`` (OS and architecture)."""
    torch = _torch()
    return {
        "cpu_model": cpu_model(),
        "cpu_capability": None if torch is None else str(torch.backends.cpu.get_cpu_capability()),
        "compute_dtype": compute_dtype(devices, precisions),
        "torch_threads": None if torch is None else int(torch.get_num_threads()),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "platform": f"{platform.system()} {platform.machine()}",
    }


def _run_configs(what: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run configs of a stamp's ``runs`` (``[{"config": {...}}]``), if any."""
    runs = what.get("runs")
    if not isinstance(runs, list):
        return []
    configs = [run.get("config") for run in runs if isinstance(run, dict)]
    return [config for config in configs if isinstance(config, dict)]


def _run_devices(what: Mapping[str, Any]) -> list[str]:
    """The ``device`` of each run config in a stamp's ``runs`` (``[{"config": {"device": ...}}]``), if any."""
    return [str(config["device"]) for config in _run_configs(what) if "device" in config]


def run_compute(config: Mapping[str, Any]) -> str:
    """How a run config's training computed on the CPU: its ``precision`` (``"fp32"`` for a config written before
    the field existed), ``"fp32-fused"`` when it trained fp32 with ``kernels="fused"``."""
    precision = str(config.get("precision", "fp32"))
    return "fp32-fused" if precision == "fp32" and config.get("kernels") == "fused" else precision


def _run_precisions(what: Mapping[str, Any]) -> list[str]:
    """:func:`run_compute` of each run config in a stamp's ``runs``."""
    return [run_compute(config) for config in _run_configs(what)]


def today() -> str:
    """Today's date in UTC, ISO format (``"2025-05-01"``)."""
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def stamp(**what: Any) -> dict[str, Any]:
    """What made a file: ``{"source_hash", "source_scope", "date", "versions", "machine", **what}``.

    ``what`` carries the rest: ``notebook`` (the notebook's name), ``runs`` (each run's name and config dict),
    ``seeds``, or any other JSON-able facts (:meth:`wsol_utils.ui.suite.Suite.provenance` builds them). The keys
    :data:`RESERVED_KEYS` are set here and cannot be passed. ``machine`` (:func:`machine`) takes the compute
    dtype from the runs' configured ``device`` and resolved ``precision``.
    """
    clash = sorted(RESERVED_KEYS.intersection(what))
    if clash:
        raise ValueError(f"stamp(**what): {clash} are set by the stamp itself; pass other keys")
    made_on = machine(_run_devices(what), _run_precisions(what))
    return {**source_record(), "date": today(), "versions": versions(), "machine": made_on, **what}


def manifest_path(directory: str | Path) -> Path:
    """``directory / PROVENANCE.json``."""
    return Path(directory) / MANIFEST_NAME


def read_manifest(directory: str | Path) -> dict[str, dict[str, Any]]:
    """The manifest of ``directory`` as ``{file name: stamp}``; ``{}`` when there is none.

    Raises ``ValueError`` naming the file when it is not a JSON object of objects.
    """
    path = manifest_path(directory)
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); delete it and {FIX}") from error
    if not isinstance(manifest, dict) or not all(isinstance(entry, dict) for entry in manifest.values()):
        raise ValueError(f"{path}: expected {{file name: {{...}}}}; delete it and {FIX}")
    return manifest


def _dumps(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False, default=str) + "\n"


def record(paths: Iterable[str | Path], entry: Mapping[str, Any]) -> list[Path]:
    """Record ``entry`` (a :func:`stamp`) for each file in ``paths`` in the manifest of the file's folder, with
    the SHA-256 of the file's bytes added; other entries are kept. Returns the manifests written.

    Each manifest is rewritten atomically (JSON, sorted keys, indent 1) under an exclusive lock on
    a lock file per folder (POSIX ``flock``; elsewhere no lock), so notebooks running in parallel
    (``reproduce --jobs 2``) do not lose each other's entries.
    """
    by_folder: dict[Path, list[Path]] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"record({str(path)!r}): no such file; write it before recording it")
        by_folder.setdefault(path.parent, []).append(path)
    written = []
    for folder, files in by_folder.items():
        with _locked(folder):
            manifest = read_manifest(folder)
            for path in files:
                manifest[path.name] = {**entry, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            written.append(write_text_atomic(manifest_path(folder), _dumps(manifest)))
    return written


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock for a read-merge-write of ``folder``'s manifest: a lock file named after the folder
    in the temporary directory (so the figures folder holds only what is committed)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: one writer at a time is the caller's business
        yield
        return
    name = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"wsol-provenance-{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def markdown_line(entry: Mapping[str, Any]) -> str:
    """The last line of a Markdown table: the source hash and what the numbers were computed in and on (the
    stamp's ``machine``: compute dtype, CPU model and torch's CPU capability, when recorded), no date (a rerun on
    the same machine gives the same bytes)."""
    recorded = entry.get("machine")
    made_on: Mapping[str, Any] = recorded if isinstance(recorded, Mapping) else {}
    computed = ""
    if made_on.get("compute_dtype"):
        cpu = made_on.get("cpu_model") or "an unknown CPU"
        capability = f", {made_on['cpu_capability']}" if made_on.get("cpu_capability") else ""
        computed = f"; computed in {made_on['compute_dtype']} on {cpu}{capability}"
    return (
        f"_Made by {PACKAGE_DIR.name} source {entry['source_hash']}{computed}; configs, seeds and date in "
        f"{MANIFEST_NAME}._"
    )


def png_metadata(entry: Mapping[str, Any]) -> dict[str, str]:
    """PNG text chunks for matplotlib's ``savefig(metadata=...)``: the source hash, no date (deterministic)."""
    return {
        "Software": f"{PACKAGE_DIR.name} source {entry['source_hash']} (matplotlib)",
        PNG_HASH_KEY: str(entry["source_hash"]),
    }


# --------------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------------


def checked_files(figures_dir: str | Path) -> list[Path]:
    """The tables and figures of a folder that need an entry: ``*.csv``, ``*.md`` (not README.md), ``*.png``."""
    return sorted(
        path
        for path in Path(figures_dir).iterdir()
        if path.is_file()
        and path.suffix in CHECKED_SUFFIXES
        and path.name not in UNCHECKED_NAMES
        and not path.name.startswith(".")
    )


def _fix(entry: Mapping[str, Any]) -> str:
    notebook = entry.get("notebook")
    if isinstance(notebook, str) and notebook[:2].isdigit():
        return f"{FIX} (this file alone: `python -m wsol_utils reproduce --only {notebook[:2]}`)"
    return FIX


def check_figures(figures_dir: str | Path, *, root: str | Path | None = None) -> list[str]:
    """What is wrong with the tables and figures in ``figures_dir``; ``[]`` when every one is current.

    Problems, one string each naming the file and the fix: a table/figure (:func:`checked_files`) without a
    manifest entry; an entry whose file is missing; a file whose bytes differ from those recorded (edited or
    copied in after it was made); an entry whose ``source_hash`` differs from :func:`source_hash` of ``root``
    now (made by other code: stale).
    """
    figures_dir = Path(figures_dir)
    if not figures_dir.is_dir():
        raise FileNotFoundError(f"check_figures({str(figures_dir)!r}): no such folder")
    try:
        manifest = read_manifest(figures_dir)
    except ValueError as error:
        return [str(error)]
    current = source_hash(root)
    problems = []
    if not manifest_path(figures_dir).is_file():
        problems.append(f"{manifest_path(figures_dir)}: missing, so nothing in {figures_dir} says what made it; {FIX}")
    files = {path.name: path for path in checked_files(figures_dir)}
    for name in sorted(set(files) - set(manifest)):
        problems.append(f"{name}: no entry in {MANIFEST_NAME} (written by hand or by old code); {FIX}")
    for name, entry in sorted(manifest.items()):
        if name not in files and not (figures_dir / name).is_file():
            problems.append(f"{name}: listed in {MANIFEST_NAME} but the file is missing; {FIX}")
            continue
        recorded = entry.get("sha256")
        if recorded is not None and hashlib.sha256((figures_dir / name).read_bytes()).hexdigest() != recorded:
            problems.append(
                f"{name}: its bytes differ from those recorded in {MANIFEST_NAME} (edited or copied "
                f"in after it was made); {_fix(entry)}"
            )
        if entry.get("source_hash") != current:
            problems.append(
                f"{name}: made by {PACKAGE_DIR.name} source {entry.get('source_hash')}, but the "
                f"source is {current} now (stale); {_fix(entry)}"
            )
    return problems
