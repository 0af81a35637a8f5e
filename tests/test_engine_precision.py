"""wsol_utils.engine.precision and the ``precision`` of a run: resolution, recording, the fp32 flags, determinism,
the cache key."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
from tiny_data import tiny_run_config

from wsol_utils.engine import INSTRUMENT, RunConfig, RunDirMismatchError, train
from wsol_utils.engine import precision as precision_module
from wsol_utils.engine.checkpoint import load_checkpoint, read_config
from wsol_utils.engine.precision import (
    DEFAULT_PRECISION,
    KERNELS_ENV,
    PRECISION_ENV,
    check_kernels,
    cpu_flags,
    native_bf16,
    resolve_kernels,
    resolve_precision,
)
from wsol_utils.engine.train import autocast_context
from wsol_utils.nets.fused import fused_kernels_available
from wsol_utils.studies import provenance
from wsol_utils.ui import reproduce
from wsol_utils.ui.train_cli import build_parser, config_from_args

X86_CPUINFO = "processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n\n"
ARM_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd bf16 sve\nCPU implementer\t: 0x41\n"


@pytest.fixture
def cpu_with_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's CPU reads as one with native bf16."""
    monkeypatch.setattr(precision_module, "this_cpu_has_native_bf16", lambda: True)


@pytest.fixture
def cpu_without_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's CPU reads as one without native bf16."""
    monkeypatch.setattr(precision_module, "this_cpu_has_native_bf16", lambda: False)


def test_cpu_flags_reads_the_flags_or_features_line(tmp_path) -> None:
    (tmp_path / "x86").write_text(X86_CPUINFO)
    (tmp_path / "arm").write_text(ARM_CPUINFO)
    (tmp_path / "none").write_text("processor\t: 0\n")
    assert cpu_flags(tmp_path / "x86") == {"fpu", "sse2", "avx512f", "avx512_bf16", "amx_tile"}
    assert cpu_flags(tmp_path / "arm") == {"fp", "asimd", "bf16", "sve"}
    assert cpu_flags(tmp_path / "none") == frozenset()
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    ("capability", "flags", "expected"),
    [
        ("AVX512", {"avx512f", "avx512_bf16"}, True),
        ("AVX512", {"avx512f", "amx_bf16"}, True),
        ("AVX512", {"avx512f", "avx512_vnni"}, False),  # AVX-512 without bf16 dot products
        ("AVX2", {"avx2", "avx512_bf16"}, False),  # torch dispatches AVX2 kernels (ATEN_CPU_CAPABILITY=avx2)
        ("DEFAULT", {"asimd", "bf16"}, False),  # ARM: fp32
        ("NO AVX", set(), False),
    ],
)
def test_native_bf16_needs_avx512_kernels_and_bf16_instructions(capability, flags, expected) -> None:
    assert native_bf16(capability, flags) is expected


def test_resolve_precision(cpu_with_bf16) -> None:
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"  # forced: also where bf16 is emulated
    assert resolve_precision("auto", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu", native=False) == "fp32"
    assert resolve_precision("auto", "cuda:1") == "fp32"  # CUDA keeps the engine's own mixed precision
    with pytest.raises(ValueError, match=r"precision='fp16'.*auto, fp32, bf16"):
        resolve_precision("fp16", "cpu")


def test_this_cpu_answer_is_the_capability_and_flags_of_this_machine() -> None:
    capability = str(torch.backends.cpu.get_cpu_capability())
    assert precision_module.this_cpu_has_native_bf16() == native_bf16(capability, cpu_flags())


def test_the_config_records_the_resolved_precision(cpu_with_bf16, monkeypatch) -> None:
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert RunConfig(device="cpu").precision == resolve_precision(DEFAULT_PRECISION, "cpu", native=True)
    config = RunConfig(precision="auto", device="cpu")
    assert config.precision == "bf16" and json.loads(config.to_json())["precision"] == "bf16"
    assert RunConfig.from_json(config.to_json()) == config
    assert config.replace(device="cuda").precision == "bf16"  # resolved once: an explicit value stays
    monkeypatch.setattr(precision_module, "this_cpu_has_native_bf16", lambda: False)
    assert RunConfig(precision="auto", device="cpu").precision == "fp32"
    with pytest.raises(ValueError, match="precision='half'"):
        RunConfig(precision="half")


def test_the_environment_sets_the_default_precision(cpu_without_bf16, monkeypatch) -> None:
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    assert RunConfig().precision == "bf16"
    monkeypatch.setenv(PRECISION_ENV, "auto")
    assert RunConfig(device="cpu").precision == "fp32"
    monkeypatch.setenv(PRECISION_ENV, "FP32 ")
    assert RunConfig().precision == "fp32"


def test_fp32_keys_are_those_of_runs_made_before_the_field(monkeypatch) -> None:
    """Keys computed by the engine of 19bb42c (before ``precision`` existed): existing run caches still hit."""
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    keys = [
        RunConfig(method=m, seed=3, dataset_kwargs={"seed": 3}, precision="fp32", kernels="torch", **INSTRUMENT).key()
        for m in ("cam", "acol", "hclnet")
    ]
    assert keys == ["862c96eeca", "be190778b8", "426eb9ccf6"]
    assert RunConfig(kernels="torch").key() == "ecad20475b"
    assert "precision" not in RunConfig(kernels="torch").training_fields()
    assert "kernels" not in RunConfig(kernels="torch").training_fields()


def test_a_bf16_run_has_its_own_key() -> None:
    fp32, bf16 = RunConfig(precision="fp32"), RunConfig(precision="bf16")
    assert bf16.training_fields()["precision"] == "bf16"
    assert bf16.key() != fp32.key() and bf16.run_name() != fp32.run_name()
    # test-time fields still share the run
    assert bf16.replace(fusion=None, num_workers=2).key() == bf16.key()


def test_an_old_run_folder_reads_as_fp32_whatever_the_default(tmp_path, monkeypatch) -> None:
    config = RunConfig(precision="fp32")
    old = {k: v for k, v in config.to_dict().items() if k != "precision"}  # a config.json of before the field
    (tmp_path / "config.json").write_text(json.dumps(old))
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    read = read_config(tmp_path)
    assert read.precision == "fp32" and read.key() == config.key()
    (tmp_path / "config.json").write_text(RunConfig(precision="bf16").to_json())
    assert read_config(tmp_path).precision == "bf16"


def test_engine_cli_fp32_flag_wins(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    parser = build_parser()
    assert config_from_args(parser.parse_args(["--method", "cam"])).precision == "bf16"
    assert config_from_args(parser.parse_args(["--precision", "bf16", "--fp32"])).precision == "fp32"
    path = tmp_path / "c.json"
    path.write_text(RunConfig(precision="bf16").to_json())
    assert config_from_args(parser.parse_args(["--config", str(path)])).precision == "bf16"
    assert config_from_args(parser.parse_args(["--config", str(path), "--fp32"])).precision == "fp32"


def test_reproduce_fp32_flag_sets_the_default_for_the_runs(monkeypatch) -> None:
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert reproduce.PRECISION_ENV == PRECISION_ENV
    with pytest.raises(SystemExit):  # stops at the unknown notebook, after the environment is set
        reproduce.main(["--fp32", "--only", "99"])
    assert os.environ[PRECISION_ENV] == "fp32"


def test_autocast_context_bf16_only_when_asked_on_the_cpu() -> None:
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    cpu = torch.device("cpu")
    with autocast_context(cpu):
        assert (a @ b).dtype == torch.float32
    with autocast_context(cpu, "fp32"):
        assert (a @ b).dtype == torch.float32
    with autocast_context(cpu, "bf16"):
        assert (a @ b).dtype == torch.bfloat16


def _weights_digest(run_dir) -> str:
    state = load_checkpoint(run_dir / "checkpoint.pt")["model"]
    digest = hashlib.sha256()
    for key in sorted(state):
        assert state[key].dtype != torch.bfloat16  # weights stay float32
        digest.update(key.encode() + state[key].contiguous().numpy().tobytes())
    return digest.hexdigest()


def test_bf16_training_is_deterministic_and_recorded(tmp_path) -> None:
    config = tiny_run_config(tmp_path, method="acol", precision="bf16", **INSTRUMENT)
    first = train(config, runs_dir=tmp_path / "a", progress=False)
    second = train(config, runs_dir=tmp_path / "b", progress=False)
    assert _weights_digest(first) == _weights_digest(second)  # run to run on one machine
    assert json.loads((first / "config.json").read_text())["precision"] == "bf16"
    assert json.loads((first / "done.json").read_text())["precision"] == "bf16"
    assert load_checkpoint(first / "checkpoint.pt")["config"]["precision"] == "bf16"
    fp32 = train(config.replace(precision="fp32"), runs_dir=tmp_path / "a", progress=False)
    assert fp32 != first and _weights_digest(fp32) != _weights_digest(first)  # autocast did change the arithmetic
    assert json.loads((fp32 / "config.json").read_text())["precision"] == "fp32"
    with pytest.raises(RunDirMismatchError, match="precision"):  # a bf16 run never stands in for an fp32 one
        train(config, run_dir=fp32, progress=False)


def test_stamps_name_the_runs_compute_dtype() -> None:
    assert provenance.compute_dtype(["cpu"], ["fp32"]) == provenance.CPU_DTYPE
    assert provenance.compute_dtype(["cpu"], ["bf16"]) == provenance.CPU_BF16_DTYPE
    assert provenance.compute_dtype(["cpu"], ["bf16", "fp32"]) == "float32 (cpu) + " + provenance.CPU_BF16_DTYPE
    what = {"runs": [{"config": {"device": "cpu", "precision": "bf16"}}, {"config": {"device": "cpu"}}]}
    assert provenance.stamp(**what)["machine"]["compute_dtype"] == "float32 (cpu) + " + provenance.CPU_BF16_DTYPE


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_device_is_decided_by_one_rule(cuda: bool, monkeypatch) -> None:
    """``"auto"`` means CUDA when available, for the engine's device and for the precision alike."""
    from wsol_utils.engine.distributed import device_name, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert device_name("auto") == ("cuda" if cuda else "cpu")
    assert (device_name("cpu"), device_name("cuda:1")) == ("cpu", "cuda:1")
    assert precision_module.device_is_cuda("auto") is cuda
    assert precision_module.device_is_cuda("cuda:0") and not precision_module.device_is_cuda("cpu")
    assert resolve_precision("auto", "auto", native=True) == ("fp32" if cuda else "bf16")
    if not cuda:
        assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize(
    ("kernels", "device", "precision", "backbone", "available", "expected"),
    [
        ("auto", "cpu", "fp32", "small", True, "fused"),
        ("auto", "cpu", "fp32", "small", False, "torch"),  # no AVX-512F or no compiled extension
        ("auto", "cpu", "fp32", "vgg16", True, "torch"),  # the kernels fit only the small backbone
        ("auto", "cpu", "bf16", "small", True, "torch"),
        ("auto", "cuda", "fp32", "small", True, "torch"),
        ("torch", "cpu", "fp32", "small", True, "torch"),
        ("fused", "cpu", "fp32", "small", False, "fused"),  # a stored run's config loads anywhere; training checks
    ],
)
def test_resolve_kernels(kernels, device, precision, backbone, available, expected) -> None:
    assert resolve_kernels(kernels, device, precision, backbone, available=available) == expected


def test_unknown_kernels_and_fused_where_they_cannot_train_are_refused() -> None:
    with pytest.raises(ValueError, match=r"RunConfig\.kernels='fast' is unknown.*--kernels"):
        RunConfig(kernels="fast")
    check_kernels("torch", "cpu", "fp32", available=False)
    check_kernels("fused", "cpu", "fp32", available=True)
    with pytest.raises(ValueError, match=r"AVX-512F.*--kernels auto or torch"):
        check_kernels("fused", "cpu", "fp32", available=False)
    for device, precision in (("cuda", "fp32"), ("cpu", "bf16")):
        with pytest.raises(ValueError, match="float32 on the CPU only"):
            check_kernels("fused", device, precision, available=True)


def test_train_refuses_fused_kernels_this_machine_cannot_run(tmp_path, monkeypatch) -> None:
    config = tiny_run_config(tmp_path, method="cam", kernels="fused", **INSTRUMENT)
    monkeypatch.setattr(precision_module, "fused_kernels_available", lambda: False)
    with pytest.raises(ValueError, match="kernels='fused' cannot train here"):
        train(config, runs_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs" / config.run_name() / "checkpoint.pt").exists()


def test_a_fused_kernel_run_has_its_own_key_and_old_folders_read_as_torch(tmp_path, monkeypatch) -> None:
    torch_run, fused_run = RunConfig(kernels="torch"), RunConfig(kernels="fused")
    assert fused_run.training_fields()["kernels"] == "fused" and fused_run.key() != torch_run.key()
    old = {k: v for k, v in torch_run.to_dict().items() if k != "kernels"}  # a config.json of before the field
    (tmp_path / "config.json").write_text(json.dumps(old))
    monkeypatch.setenv(KERNELS_ENV, "fused")
    read = read_config(tmp_path)
    assert read.kernels == "torch" and read.key() == torch_run.key()
    monkeypatch.setenv(KERNELS_ENV, "torch")
    assert RunConfig().kernels == "torch"
    assert reproduce.KERNELS_ENV == KERNELS_ENV
    with pytest.raises(SystemExit):  # stops at the unknown notebook, after the environment is set
        reproduce.main(["--kernels", "fused", "--only", "99"])
    assert os.environ[KERNELS_ENV] == "fused"


def test_stamps_name_fused_kernel_runs() -> None:
    assert provenance.run_compute({"precision": "fp32", "kernels": "fused"}) == "fp32-fused"
    assert provenance.run_compute({"precision": "fp32", "kernels": "torch"}) == "fp32"
    assert provenance.run_compute({}) == "fp32"
    what = {"runs": [{"config": {"device": "cpu", "precision": "fp32", "kernels": "fused"}}]}
    assert provenance.stamp(**what)["machine"]["compute_dtype"] == provenance.CPU_FUSED_DTYPE
    assert provenance.compute_dtype(["cpu"], ["fp32", "fp32-fused"]) == "float32 (cpu) + " + provenance.CPU_FUSED_DTYPE


def test_fused_kernel_training_is_deterministic_and_recorded(tmp_path) -> None:
    if not fused_kernels_available():
        pytest.skip("the fused kernels need an x86-64 CPU with AVX-512F and a C compiler")
    config = tiny_run_config(tmp_path, method="hclnet", kernels="fused", **INSTRUMENT)
    first = train(config, runs_dir=tmp_path / "a", progress=False)
    second = train(config, runs_dir=tmp_path / "b", progress=False)
    assert _weights_digest(first) == _weights_digest(second)  # run to run on one machine
    assert json.loads((first / "done.json").read_text())["kernels"] == "fused"
    plain = train(config.replace(kernels="torch"), runs_dir=tmp_path / "a", progress=False)
    assert plain != first and _weights_digest(plain) != _weights_digest(first)  # the kernels did run
