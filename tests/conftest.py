"""Shared test fixtures: tiny on-disk data sets in CUB's archive layout and in wsoleval's metadata layout.

``make_cub_folder(root, images)`` and ``make_wsoleval_folder(root, images)`` write the folders from a list
of :class:`TinyImage` (few small generated JPEGs); the ``tiny_cub`` / ``tiny_wsoleval`` fixtures use the
default :data:`TINY_IMAGES`. Tests may then damage a file to check the loaders' errors.

Worker processes (``engine.train_many``) fork from a forkserver that has already imported torch and the engine
(:func:`_preload_the_forkserver`), so that each worker does not pay the imports again.

``fake_weights`` (session): fake torchvision ImageNet checkpoints of VGG16 and ResNet50 with the real keys and shapes
(:mod:`fake_weights`), for tests that load "pretrained" backbones without the network.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from tiny_data import TINY_IMAGES, TinyImage, make_cub_folder, make_wsoleval_folder

from wsol_utils.engine import pool

#: What the test session's forkserver imports before it forks the workers of ``engine.train_many`` and of
#: ``data.scoremaps.evaluate_scoremaps``: the engine's own list (torch, torch._dynamo, the engine, the score-map
#: reader) after ``__main__``, the default entry.
FORKSERVER_PRELOAD = ["__main__", *pool.FORKSERVER_PRELOAD]


def _preload_the_forkserver() -> None:
    """Start the session's forkserver now, with :data:`FORKSERVER_PRELOAD` imported, so that every worker forks with
    the imports done instead of repeating them. Started here because the first pool decides what the server
    imported (``boxeval`` sets its own preload list, which would otherwise win when its tests run first); the
    server imports in the background while pytest collects. The workers' results do not change (their thread
    count is still set by the library); tests/test_engine_pool.py still compares a worker's weights with a run
    trained in this process."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)
    forkserver.ensure_running()


_preload_the_forkserver()


@pytest.fixture
def tiny_images() -> tuple[TinyImage, ...]:
    """The default tiny image list (4 images, 3 classes, one image with two boxes)."""
    return TINY_IMAGES


@pytest.fixture
def tiny_cub(tmp_path: Path) -> Path:
    """A tiny CUB_200_2011 folder (see :func:`make_cub_folder`)."""
    return make_cub_folder(tmp_path / "cub")


@pytest.fixture
def tiny_wsoleval(tmp_path: Path) -> Path:
    """A tiny wsoleval-layout root with split ``test`` (see :func:`make_wsoleval_folder`)."""
    return make_wsoleval_folder(tmp_path / "wsoleval")


@pytest.fixture
def make_cub() -> Callable[..., Path]:
    """The :func:`make_cub_folder` writer, for tests that need their own image list."""
    return make_cub_folder


@pytest.fixture
def make_wsoleval() -> Callable[..., Path]:
    """The :func:`make_wsoleval_folder` writer, for tests that need their own image list."""
    return make_wsoleval_folder


@pytest.fixture(scope="session")
def fake_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fake ImageNet files ``{"vgg16": path, "resnet50": path}`` (:func:`fake_weights.write_fake_weights`), written
    once per session; :func:`fake_weights.install` links them into a ``TORCH_HOME``."""
    from fake_weights import write_fake_weights

    return write_fake_weights(tmp_path_factory.mktemp("fake_imagenet"))


@pytest.fixture
def load_benchmark(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """``load_benchmark("bench_gpu")``: the script ``benchmarks/<name>.py`` imported as a module (registered in
    ``sys.modules`` for this test only: a dataclass in it looks its module up)."""

    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load
