"""ladkit.models.device: native-bf16 detection, what dtype "auto" loads on a CPU and a GPU, the slow-dtype
warning, and the default thread count."""

from __future__ import annotations

import pytest
import torch

from ladkit.models import device
from ladkit.models.loading import ModelConfig, load_policy

X86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n\nprocessor\t: 1\nflags\t\t: fpu avx512f {extra}\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd {extra}\nCPU implementer\t: 0x41\n"


@pytest.mark.parametrize(
    ("text", "native"),
    [
        (X86.format(extra=""), False),  # AVX-512 alone emulates bf16 matmuls
        (X86.format(extra="avx512_bf16"), True),
        (X86.format(extra="amx_bf16 amx_tile"), True),
        (ARM.format(extra=""), False),
        (ARM.format(extra="bf16 i8mm"), True),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, text, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert device.cpu_has_native_bf16(cpuinfo) is native


def test_no_cpuinfo_counts_as_no_native_bf16(tmp_path):
    assert device.cpu_flags(tmp_path / "absent") == frozenset()
    assert not device.cpu_has_native_bf16(tmp_path / "absent")


@pytest.mark.parametrize(
    ("requested", "checkpoint", "device_type", "native", "loaded"),
    [
        ("auto", "bfloat16", "cpu", False, "float32"),  # emulated bf16: ~4x slower per forward (issue 14)
        ("auto", "bfloat16", "cpu", True, "bfloat16"),
        ("auto", "float16", "cpu", True, "float32"),  # fp16 is emulated on CPUs either way
        ("auto", None, "cpu", True, "float32"),
        ("auto", "bfloat16", "cuda", False, "bfloat16"),  # a GPU keeps the checkpoint's dtype
        ("auto", None, "cuda", False, "auto"),
        ("bfloat16", "float32", "cpu", False, "bfloat16"),  # an explicit request is kept (with a warning)
        ("float32", "bfloat16", "cuda", True, "float32"),
    ],
)
def test_load_dtype(requested, checkpoint, device_type, native, loaded):
    assert device.load_dtype(requested, checkpoint, device_type, native_bf16=native) == loaded


def test_bf16_on_a_cpu_without_it_warns_in_one_line(capsys):
    message = device.warn_slow_dtype("bfloat16", "cpu", native_bf16=False)
    err = capsys.readouterr().err
    assert err == message + "\n" and err.count("\n") == 1 and "model.dtype=float32" in err
    for args in (("bfloat16", "cpu", True), ("float32", "cpu", False), ("bfloat16", "cuda", False)):
        assert device.warn_slow_dtype(*args) is None
    assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def bf16_checkpoint(tmp_path_factory):
    """The tiny Llama saved in bfloat16: config.json records dtype bfloat16, like most hub checkpoints."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ladkit.models.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("bf16"), "llama", hidden=32, layers=1, heads=2)
    AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).save_pretrained(path)
    AutoTokenizer.from_pretrained(path).save_pretrained(path)
    return path


@pytest.mark.parametrize(("device_type", "native", "dtype"), [("cpu", False, torch.float32),
                                                              ("cpu", True, torch.bfloat16),
                                                              ("cuda", False, torch.bfloat16)])  # fmt: skip
def test_auto_loads_a_bf16_checkpoint_per_device(bf16_checkpoint, monkeypatch, device_type, native, dtype):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *args: native)
    model, _ = load_policy(ModelConfig(name_or_path=str(bf16_checkpoint), lora=False), device_type)
    assert {p.dtype for p in model.parameters()} == {dtype}  # (the "cuda" model is only loaded, never moved)


def test_explicit_bf16_on_a_cpu_without_it_loads_bf16_and_warns(bf16_checkpoint, monkeypatch, capsys):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda *args: False)
    model, _ = load_policy(ModelConfig(name_or_path=str(bf16_checkpoint), lora=False, dtype="bfloat16"), "cpu")
    assert next(model.parameters()).dtype == torch.bfloat16
    assert "warning: model.dtype=bfloat16 on a CPU without native bfloat16" in capsys.readouterr().err


@pytest.mark.parametrize(("cores", "processes", "threads"), [(1, 1, 1), (2, 1, 1), (16, 1, 8), (16, 2, 4), (3, 4, 1)])
def test_default_threads_leave_half_the_cores(cores, processes, threads):
    assert device.default_threads(cores, processes) == threads


def test_default_threads_split_among_torchrun_processes(monkeypatch):
    monkeypatch.setattr(device, "usable_cores", lambda: 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert device.default_threads() == 2  # 8 cores, half of them, shared by 2 local processes


def test_set_threads_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(device, "usable_cores", lambda: 6)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    try:
        assert device.set_threads(None) == 3 and torch.get_num_threads() == 3
        assert device.set_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_ladkit_eval_sets_the_threads_before_evaluating(monkeypatch, tmp_path):
    import typer
    from ladkit_cli.eval import eval_command
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("noop")(lambda: None)  # two commands so that "eval" stays a sub-command
    seen = {}
    monkeypatch.setattr(
        "ladkit.evaluation.evaluate_run", lambda *a, **k: seen.update(threads=torch.get_num_threads()) or {"step": 0}
    )
    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, ["eval", str(tmp_path), "--threads", "2"])
        assert result.exit_code == 0, result.output
        assert seen == {"threads": 2}
    finally:
        torch.set_num_threads(before)
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--threads", "0"])
    assert str(result.exception).startswith("--threads must be >= 1, got 0")
