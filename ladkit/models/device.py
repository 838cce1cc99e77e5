"""What the CPU can do, decided on purpose: the dtype `model.dtype=auto` means, and torch's thread count.

- dtype: a GPU keeps the checkpoint's own dtype. On a CPU, `auto` is float32 unless the checkpoint is bf16 and
  the CPU has native bf16 arithmetic (x86 `avx512_bf16` / `amx_bf16`, Arm `bf16`): without it bf16 matmuls are
  emulated, and one prefill of a 135M model took 133 s in bf16 against 34 s in float32 (issue 14). Asking for
  bf16 on such a CPU works but prints a one-line warning.
- threads: torch's default takes every core it sees, which on a machine shared with reward workers, a vLLM
  engine or other users oversubscribes it. `default_threads` takes half of the cores this process may use
  (benchmarks/results/threads.json measured 1 and 2 threads on a 2-core machine).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# /proc/cpuinfo flags that mean bf16 matmuls run in hardware (x86: AVX512-BF16, AMX; Arm: FEAT_BF16).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU feature flags Linux reports (x86 `flags`, Arm `Features`); empty where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def cpu_has_native_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """True when the CPU multiplies bf16 in hardware. Unknown (no /proc/cpuinfo, e.g. macOS) counts as no:
    float32 is never the slow choice."""
    return bool(NATIVE_BF16_FLAGS & cpu_flags(cpuinfo))


def load_dtype(requested: str, checkpoint_dtype: str | None, device_type: str, native_bf16: bool | None = None) -> str:
    """The dtype to load weights in: `requested` ("auto", "float32", "bfloat16", "float16") on `device_type`.

    `checkpoint_dtype` is the config.json's ("bfloat16", ...; None when unrecorded). A GPU and an explicit
    request keep what they say; only `auto` on a CPU is decided here (see the module docstring)."""
    if requested != "auto":
        return requested
    if device_type != "cpu":
        return checkpoint_dtype or "auto"
    if native_bf16 is None:
        native_bf16 = cpu_has_native_bf16()
    return "bfloat16" if checkpoint_dtype == "bfloat16" and native_bf16 else "float32"


def warn_slow_dtype(dtype: str, device_type: str, native_bf16: bool | None = None) -> str | None:
    """Print (and return) a one-line warning when `dtype` is emulated on this CPU; None when it is not."""
    if device_type != "cpu" or dtype not in ("bfloat16", "float16"):
        return None
    if dtype == "bfloat16" and (cpu_has_native_bf16() if native_bf16 is None else native_bf16):
        return None
    message = (
        f"ladkit: warning: model.dtype={dtype} on a CPU without native {dtype} arithmetic is emulated and several "
        "times slower than float32; use --set model.dtype=float32 (or auto)"
    )
    print(message, file=sys.stderr)
    return message


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one, else os.cpu_count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads(cores: int | None = None, processes: int | None = None) -> int:
    """Half the usable cores shared among this machine's training processes (torchrun's LOCAL_WORLD_SIZE), at
    least 1: the other half is left to reward workers, a vLLM engine and whoever else shares the machine."""
    cores = usable_cores() if cores is None else cores
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if processes is None else processes
    return max(1, cores // (2 * max(1, processes)))


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count to `threads` (None: `default_threads()`); returns the count set."""
    import torch

    count = default_threads() if threads is None else threads
    # torch._C's own function: an in-process vLLM CPU engine replaces torch.set_num_threads with a no-op once it
    # has bound its threads, so a later call through torch would silently do nothing.
    torch._C.set_num_threads(count)
    return count


__all__ = ["cpu_has_native_bf16", "default_threads", "load_dtype", "set_threads", "usable_cores", "warn_slow_dtype"]
