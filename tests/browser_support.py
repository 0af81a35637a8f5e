"""Helpers for the real-browser test: a throw-away JupyterLab server and Debian's headless Chromium.

* :func:`find_chromium` locates a system Chromium (Playwright cannot download its own browsers here;
  docs/methods.md §5). ``WSOL_CHROMIUM`` overrides the path.
* :class:`JupyterLabServer` starts JupyterLab from the project's ``.venv`` on loopback with a token-less,
  password-less test configuration, isolated config/data/runtime/workspace dirs (no state leaks between
  runs or into the user's ``~/.jupyter``), waits for ``/api/status`` with a bounded timeout, and always
  terminates the whole process group (kernels included) on exit -- also when the test fails.
* :func:`launch_chromium` starts Chromium through Playwright with the flags docs/methods.md §5 lists and a fresh
  user-data dir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
LOOPBACK = "127.0.0.1"


def find_chromium() -> str | None:
    """Path of a usable system Chromium, or ``None``. ``$WSOL_CHROMIUM`` wins when set."""
    override = os.environ.get("WSOL_CHROMIUM")
    candidates = (override,) if override else CHROMIUM_CANDIDATES
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_chromium() -> str:
    """:func:`find_chromium`'s path; skips the calling test (with how to install it) when there is no Chromium or
    no playwright package."""
    import pytest

    path = find_chromium()
    if path is None:
        pytest.skip(
            "no system Chromium found (/usr/bin/chromium): run `make browser` (apt-get install chromium) "
            "or set WSOL_CHROMIUM; Playwright cannot download its own browsers here"
        )
    pytest.importorskip("playwright.sync_api", reason="python package playwright is not installed")
    return path


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def jupyter_executable() -> Path:
    """The ``jupyter`` script of the running interpreter's environment (the project's ``.venv``)."""
    path = Path(sys.executable).parent / "jupyter"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: install the 'notebooks' extra into this environment")
    return path


class JupyterLabServer:
    """A JupyterLab server for one test, as a context manager.

    ``root_dir`` is served (copy the notebooks there first); ``state_dir`` holds the isolated Jupyter
    config/data/runtime/workspaces and the server log (``state_dir / "jupyterlab.log"``).
    """

    def __init__(
        self, root_dir: Path, state_dir: Path, *, startup_timeout: float = 90.0, extra_env: dict[str, str] | None = None
    ) -> None:
        self.root_dir = Path(root_dir)
        self.state_dir = Path(state_dir)
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = self.state_dir / "jupyterlab.log"
        self._process: subprocess.Popen[bytes] | None = None

    def _write_lab_settings(self) -> None:
        """User settings for the isolated Lab: no news pop-up, no update check, no kernel-choice dialog."""
        settings = {
            ("apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False},
            # every cell stays in the DOM (the default windowing detaches cells scrolled out of view)
            ("notebook-extension", "tracker"): {"autoStartDefaultKernel": True, "windowingMode": "none"},
        }
        for (extension, plugin), values in settings.items():
            folder = self.state_dir / "settings" / "@jupyterlab" / extension
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("config", "runtime", "workspaces", "settings"):
            (self.state_dir / name).mkdir(parents=True, exist_ok=True)
        self._write_lab_settings()
        env.update(
            JUPYTER_CONFIG_DIR=str(self.state_dir / "config"),
            JUPYTER_RUNTIME_DIR=str(self.state_dir / "runtime"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.state_dir / "workspaces"),
            JUPYTERLAB_SETTINGS_DIR=str(self.state_dir / "settings"),
            JUPYTER_PLATFORM_DIRS="1",
            TQDM_DISABLE="1",
            PYTHONUNBUFFERED="1",
        )
        # the kernel must be this environment's python3 (ipykernel lives in .venv)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """The command line that starts the server (token-less, loopback only, no browser)."""
        return [
            str(jupyter_executable()),
            "lab",
            "--no-browser",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.ip={LOOPBACK}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--LabApp.workspaces_dir={self.state_dir / 'workspaces'}",
            f"--LabApp.user_settings_dir={self.state_dir / 'settings'}",
            "--ServerApp.open_browser=False",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        ]

    def start(self) -> None:
        """Start the server and block until ``/api/status`` answers (or raise ``TimeoutError``)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps writing to it
        try:
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.root_dir,
                env=self._environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as response:
                    json.load(response)
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                time.sleep(0.25)
        raise TimeoutError(f"JupyterLab did not answer within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The last ``chars`` characters of the server log (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server's process group (kernels included); kill it if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> JupyterLabServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def launch_chromium(playwright: Any, executable_path: str, user_data_dir: Path) -> Any:
    """A headless Chromium *context* (Playwright ``BrowserContext``) on a fresh user-data dir."""
    if user_data_dir.exists():
        shutil.rmtree(user_data_dir)
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=executable_path,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )


# -- the tiny run both widget test modules share ----------------------------------------------------
#: Synthetic set and training of the tiny test run: 1 epoch on 64 images of 32 px (seconds on a CPU).
TINY_DATASET_KWARGS: dict[str, int] = {"num_train": 64, "num_val": 8, "num_test": 40}


def train_tiny_run(root: Path, method: str = "acol", delta: float = 0.6) -> Path:
    """Train (or reuse, through the engine's run cache under ``root``) a tiny run; returns its directory.

    Both test modules call it with the same ``root`` (``tmp_path_factory.getbasetemp() / "widget-runs"``), so
    the run is trained once per session.
    """
    from wsol_utils.engine import RunConfig, train

    config = RunConfig(
        method=method,
        delta=delta,
        epochs=1,
        batch_size=32,
        image_size=32,
        lr=0.01,
        device="cpu",
        val_split=None,
        data_root=str(root / "data"),
        dataset_kwargs=dict(TINY_DATASET_KWARGS),
    )
    return train(config, runs_dir=root / "runs", progress=False)
