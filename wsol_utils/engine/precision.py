"""The CPU compute precision of training: ``"fp32"``, or ``"bf16"`` autocast where the CPU computes bf16 natively.

:class:`~wsol_utils.engine.config.RunConfig` ``precision`` is one of :data:`PRECISIONS`; ``"auto"`` is resolved on
creation (:func:`resolve_precision`), so a run's ``config.json`` and its cache key record what was trained:

- ``"fp32"``: float32 throughout (the engine before the option; these runs keep their cache keys).
- ``"bf16"``: the *forward* of each training step under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (convs
  and matmuls in bf16 with float32 accumulation; weights, gradients, optimizer state, loss and softmax stay
  float32). Validation, maps and evaluation run in float32 for exact scoring.
- ``"auto"``: ``"bf16"`` on a CPU with native bf16 (:func:`native_bf16`: x86 AVX-512 with ``avx512_bf16`` or
  ``amx_bf16``), ``"fp32"`` elsewhere and whenever the run's device is CUDA.

CUDA is not affected: there the engine always trains under its own mixed precision (bf16 where supported, else
fp16 with a grad scaler; :func:`wsol_utils.engine.train.autocast_context`).

``RunConfig.kernels`` (:data:`KERNELS`, resolved on creation by :func:`resolve_kernels`) chooses how a float32 CPU
run computes the small backbone's layers in training (docs/methods.md §4.5):

- ``"torch"``: PyTorch's layers (oneDNN); these runs keep their cache keys.
- ``"fused"``: the fused C kernels (:mod:`wsol_utils.nets.fused`) for the layers they fit: the same equations in
  another summation order (float rounding as on another CPU), about 1.7-1.9x faster a training run at the 8 px
  instrument (benchmarks/README.md). Evaluation runs PyTorch's layers either way. Opt-in (:data:`DEFAULT_KERNELS`).
- ``"auto"``: ``"fused"`` for a ``small`` backbone trained in fp32 on the CPU where the kernels run
  (:func:`wsol_utils.nets.fused.fused_kernels_available`: x86-64 with AVX-512F and the compiled extension),
  ``"torch"`` elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch

from wsol_utils.engine.distributed import device_name
from wsol_utils.nets.fused import fused_kernels_available

#: The values of ``RunConfig.precision``; :func:`resolve_precision` turns ``"auto"`` into one of the other two.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
#: The default of ``RunConfig.precision`` (``--precision`` / ``WSOL_PRECISION`` override it). Switching it to
#: ``"auto"`` makes bf16 the default on CPUs with native bf16 (and changes those runs' numbers and cache keys).
DEFAULT_PRECISION = "fp32"
#: Environment variable that overrides :data:`DEFAULT_PRECISION` (``python -m wsol_utils reproduce --fp32`` sets
#: it to ``fp32`` for the notebook kernels).
PRECISION_ENV = "WSOL_PRECISION"
#: CPU feature flags (``/proc/cpuinfo``) of native bf16 dot products on x86.
X86_BF16_FLAGS: frozenset[str] = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO_PATH = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str | Path = CPUINFO_PATH) -> frozenset[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (a ``/proc/cpuinfo`` text: its ``flags`` line on x86,
    ``Features`` on ARM), lower-case; empty when the file is missing or has neither line."""
    try:
        lines = Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return frozenset()
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            return frozenset(value.lower().split())
    return frozenset()


def native_bf16(capability: str, flags: Iterable[str]) -> bool:
    """Whether torch computes bf16 natively on this CPU: torch's CPU capability (``get_cpu_capability()``) is
    AVX-512 (its bf16 kernels are dispatched there) and the CPU has ``avx512_bf16`` or ``amx_bf16``
    (:data:`X86_BF16_FLAGS`). Anything else (AVX2, ARM, an ``ATEN_CPU_CAPABILITY`` below AVX-512) is ``False``:
    bf16 would be emulated there, slower than fp32."""
    return capability.upper().startswith("AVX512") and bool(X86_BF16_FLAGS.intersection(flags))


def this_cpu_has_native_bf16() -> bool:
    """:func:`native_bf16` of this machine (torch's capability and ``/proc/cpuinfo``'s flags)."""
    return native_bf16(str(torch.backends.cpu.get_cpu_capability()), cpu_flags())


def device_is_cuda(device: str) -> bool:
    """A ``RunConfig.device`` that trains on CUDA: ``"cuda"``, ``"cuda:N"``, or ``"auto"`` with CUDA available
    (the engine's rule, :func:`wsol_utils.engine.distributed.device_name`)."""
    return device_name(device).startswith("cuda")


def resolve_precision(precision: str, device: str, *, native: bool | None = None) -> str:
    """``"fp32"`` or ``"bf16"`` for ``precision`` (one of :data:`PRECISIONS`) on ``device`` (a
    ``RunConfig.device``): ``"fp32"`` / ``"bf16"`` as given; ``"auto"``: ``"bf16"`` when the device is the CPU and
    ``native`` (default: :func:`this_cpu_has_native_bf16`), else ``"fp32"`` (CUDA keeps its own mixed precision).

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(
            f"RunConfig.precision={precision!r} is unknown; choose one of {', '.join(PRECISIONS)} (--precision)"
        )
    if precision != "auto":
        return precision
    if device_is_cuda(device):
        return "fp32"
    return "bf16" if (this_cpu_has_native_bf16() if native is None else native) else "fp32"


def default_precision() -> str:
    """The default of ``RunConfig.precision``: ``WSOL_PRECISION`` when set (``reproduce --fp32`` sets ``fp32``),
    else :data:`DEFAULT_PRECISION`. Checked when the config is created."""
    return os.environ.get(PRECISION_ENV, "").strip().lower() or DEFAULT_PRECISION


#: The values of ``RunConfig.kernels``; :func:`resolve_kernels` turns ``"auto"`` into one of the other two.
KERNELS: tuple[str, ...] = ("auto", "torch", "fused")
#: The default of ``RunConfig.kernels`` (``--kernels`` / ``WSOL_KERNELS`` override it). ``"torch"``: the kernels
#: agree with PyTorch's layers per run (benchmarks/results/train_kernels_science.md), but the whole suite trained with
#: them changed 9 verdicts at the edge of their intervals (benchmarks/results/kernels_figures/COMPARE.md), and the
#: rule written before that run was read keeps PyTorch's layers as the default then (kernels_figures/RULE.md).
DEFAULT_KERNELS = "torch"
#: Environment variable that overrides :data:`DEFAULT_KERNELS` (``python -m wsol_utils reproduce --kernels auto``
#: sets it for the suite's runs and the notebook kernels).
KERNELS_ENV = "WSOL_KERNELS"


def resolve_kernels(kernels: str, device: str, precision: str, backbone: str, *, available: bool | None = None) -> str:
    """``"torch"`` or ``"fused"`` for ``kernels`` (one of :data:`KERNELS`) of a run on ``device`` in the resolved
    ``precision`` with ``backbone``: ``"torch"`` / ``"fused"`` as given (a stored run's config loads anywhere;
    training checks, :func:`check_kernels`); ``"auto"``: ``"fused"`` when the run trains a ``"small"`` backbone in
    ``"fp32"`` on the CPU and the kernels run here (``available``, default
    :func:`~wsol_utils.nets.fused.fused_kernels_available`), else ``"torch"``.

    Raises:
        ValueError: ``kernels`` is not one of :data:`KERNELS`.
    """
    if not isinstance(kernels, str) or kernels not in KERNELS:
        raise ValueError(f"RunConfig.kernels={kernels!r} is unknown; choose one of {', '.join(KERNELS)} (--kernels)")
    if kernels != "auto":
        return kernels
    fits = backbone == "small" and precision == "fp32" and not device_is_cuda(device)
    return "fused" if fits and (fused_kernels_available() if available is None else available) else "torch"


def check_kernels(kernels: str, device: str, precision: str, *, available: bool | None = None) -> None:
    """Before training: a run with ``kernels="fused"`` must train in ``"fp32"`` on the CPU of a machine where the
    kernels run (``available``, default :func:`~wsol_utils.nets.fused.fused_kernels_available`).

    Raises:
        ValueError: naming what is missing and the fix (``--kernels torch`` or ``auto``).
    """
    if kernels != "fused":
        return
    if not (fused_kernels_available() if available is None else available):
        why = "this CPU lacks AVX-512F or the compiled extension is missing (reinstall with a C compiler)"
    elif device_is_cuda(device) or precision != "fp32":
        why = f"they train float32 on the CPU only (device {device!r}, precision {precision!r})"
    else:
        return
    raise ValueError(f"RunConfig.kernels='fused' cannot train here: {why}; use --kernels auto or torch")


def default_kernels() -> str:
    """The default of ``RunConfig.kernels``: ``WSOL_KERNELS`` when set, else :data:`DEFAULT_KERNELS`."""
    return os.environ.get(KERNELS_ENV, "").strip().lower() or DEFAULT_KERNELS
