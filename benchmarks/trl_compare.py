"""Benchmark: ladkit's GRPO step against TRL's GRPOTrainer, in lockstep, over a sweep of geometries (issue 19).

Lockstep: for each geometry, each contender lives in one persistent process (multiprocessing, spawn) that builds
its side once and then runs single steps when told to. The driver alternates them step by step, rotating which
goes first each round, so both see the same machine load at the same moments; a round's ratio is TRL's step time
over ladkit's. The first `--warmup` rounds are dropped. Per geometry: the median of the per-round ratios with a
bootstrap 90% interval (rounds resampled), each side's median step time, tokens per step and memory.

The same work on both sides, every setting read from one ladkit TrainConfig (preset default, objective grpo):
  model     "char": the built-in ~1M-parameter character Llama (countdown-trained), countdown compact prompts
            and ladkit's exact countdown reward. "bpe": a random-init Qwen2 (hidden 64, 2 layers, tied
            embeddings: ~3.3M parameters, 3.1M of them the embedding) with SmolLM2's 49,152-token BPE tokenizer,
            the same countdown prompts and a text reward (the share of letters in the completion,
            `letter_share` below) since a random model never solves countdown; it rarely samples EOS, so its
            completions run to max_new_tokens. fp32, no gradient checkpointing, LoRA r16 alpha 32 on all linear
            layers or full fine-tuning.
  step      one generation batch: B prompts x G completions of at most T tokens at temperature 1 with HF generate
            (TRL) or ladkit's HF backend, then `mini_batches` AdamW steps (lr 5e-4, betas 0.9/0.99, grad-norm
            clip 1, constant schedule, each side's own default AdamW implementation), GRPO with beta 0, clip 0.2,
            loss aggregation "grpo", group-scaled advantages. TRL: per_device_train_batch_size B*G/mini_batches,
            steps_per_generation mini_batches, num_iterations 1; its step is the time from the release of one
            generation batch's first optimiser step to the end of its last (a blocking callback at every
            mini_batches-th on_step_end). ladkit: one train_step() call, the product path.
  reward    the same function on both sides: ladkit's task.score (TRL gets it as a reward function).
  no eval, checkpoints, sample files, completion logging or TRL logging inside the timed window.
Memory, per side: RSS at the start of training (model, optimiser, trainer built), the whole-process peak (VmHWM)
and the growth during training (VmHWM after the timed steps minus that start RSS; the peak is reset through
/proc/self/clear_refs before the first step, so start-up does not count).

Loss parity (benchmarks/trl_parity.py, asserted by tests/unit/test_trl_parity.py) goes in the same record.
Writes benchmarks/results/trl_compare.json (`--out`) and prints the record as one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_env import environment, write_record  # benchmarks/bench_env.py (the script's own folder is on sys.path)

SIDES = ("ladkit", "trl")
LOSS_TYPE = "grpo"  # ladkit grpo.aggregation == TRL loss_type
CLIP = 0.2
TRAIN_SIZE, EVAL_SIZE = 1000, 8  # countdown problems


@dataclass(frozen=True)
class Geometry:
    model: str  # "char" (built-in countdown Llama) or "bpe" (random Qwen2 with SmolLM2's BPE vocabulary)
    lora: bool
    prompts: int  # B
    group_size: int  # G
    max_new_tokens: int  # T
    mini_batches: int
    objective: str = "grpo"  # "lad": ladkit's LAD defaults on both sides, TRL through LadkitGRPOTrainer

    @property
    def name(self) -> str:
        tune = "lora" if self.lora else "full"
        name = f"{self.model}-{tune}-B{self.prompts}-G{self.group_size}-T{self.max_new_tokens}-mb{self.mini_batches}"
        return name if self.objective == "grpo" else f"{name}-{self.objective}"


# One factor at a time around two centres (the old benchmark's geometry for the character model; a small batch
# for the BPE model), plus corners: prompts 2..16, G 4..16, T 16..128, 1 and 2 mini-batches, LoRA and full.
SWEEP = (
    Geometry("char", True, 16, 8, 16, 2),
    Geometry("char", True, 2, 8, 16, 1),
    Geometry("char", True, 2, 8, 16, 2),
    Geometry("char", True, 8, 4, 16, 1),
    Geometry("char", False, 16, 8, 16, 2),
    Geometry("char", False, 2, 8, 16, 1),
    Geometry("bpe", True, 2, 8, 16, 1),
    Geometry("bpe", True, 2, 8, 16, 2),
    Geometry("bpe", False, 2, 8, 16, 1),
    Geometry("bpe", True, 8, 8, 16, 2),
    Geometry("bpe", True, 16, 8, 16, 2),
    Geometry("bpe", True, 4, 16, 16, 1),
    Geometry("bpe", True, 2, 8, 64, 1),
    Geometry("bpe", True, 2, 8, 128, 1),
    Geometry("bpe", False, 4, 8, 128, 2),
)
QUICK = (Geometry("char", True, 2, 4, 8, 1), Geometry("bpe", False, 2, 4, 8, 2))


def letter_share(completion: str, example) -> float:
    """The reward of the "bpe" geometries: the share of ASCII letters among the completion's characters (a
    deterministic text score with spread inside a group, for a random model that never solves countdown)."""
    return sum(c.isascii() and c.isalpha() for c in completion) / max(1, len(completion))


def build_bpe_model(folder: Path) -> Path:
    """A random-init Qwen2 (hidden 64, 2 layers, tied embeddings) with SmolLM2's BPE tokenizer, saved to `folder`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ladkit.models.loading import resolve_model_path
    from ladkit.models.tiny import tiny_config

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("smollm2-135m-instruct"))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = tiny_config(
        "qwen2",
        len(tokenizer),
        max_positions=512,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def ladkit_config(geometry: Geometry, model_path: str, seed: int):
    """The one TrainConfig both sides read their settings from: preset default with GRPO at this geometry."""
    from ladkit.training.resolve import resolve

    overrides = [
        f"model.name_or_path={model_path}",
        f"model.lora={str(geometry.lora).lower()}",
        "model.dtype=float32",
        f"objective={geometry.objective}",
        f"grpo.aggregation={LOSS_TYPE}",
        f"grpo.epsilon_low={CLIP}",
        f"grpo.epsilon_high={CLIP}",
        "grpo.beta=0.0",
        f"prompts_per_step={geometry.prompts}",
        f"group_size={geometry.group_size}",
        f"rollout.max_new_tokens={geometry.max_new_tokens}",
        "rollout.temperature=1.0",
        f"mini_batches={geometry.mini_batches}",
        "samples_every=0",
        "tracked_prompts=0",
        "eval_every=0",
        "checkpoint_every=0",
        "checkpoint_every_s=0",
        "threads=1",
        f"seed={seed}",
        f"task.train_size={TRAIN_SIZE}",
        f"task.eval_size={EVAL_SIZE}",
    ]
    if geometry.model == "bpe":
        overrides += ["task.reward=trl_compare:letter_share"]
    return resolve("default", overrides, {})


# --------------------------------------------------------------------------------------------------- memory


def _rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    return float("nan")


class Memory:
    """RSS at the start of training, the whole-process peak, and the peak growth during training."""

    def start(self) -> None:
        self.start_mb, self.startup_peak_mb = _rss_mb("VmRSS"), _rss_mb("VmHWM")
        with contextlib.suppress(OSError):  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
            Path("/proc/self/clear_refs").write_text("5")

    def record(self) -> dict:
        training_peak = _rss_mb("VmHWM")
        return {
            "rss_train_start_mb": round(self.start_mb, 1),
            "peak_rss_mb": round(max(self.startup_peak_mb, training_peak), 1),
            "train_growth_mb": round(training_peak - self.start_mb, 1),
        }


# ------------------------------------------------------------------------------------------------- workers


def worker(side: str, geometry: Geometry, model_path: str, seed: int, conn) -> None:
    """One contender in its own process: build, then {"step"} -> one step's record, {"stop"} -> memory record."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # `trl_compare:letter_share` for the custom reward
    torch.set_num_threads(1)
    try:
        {"ladkit": _ladkit_worker, "trl": _trl_worker}[side](geometry, model_path, seed, conn)
    except BaseException as error:  # the driver reports it with the side and geometry
        conn.send({"error": f"{type(error).__name__}: {error}"})
        raise


def _ladkit_worker(geometry: Geometry, model_path: str, seed: int, conn) -> None:
    from ladkit.training.loop import train_step
    from ladkit.training.setup import build

    run_dir = Path(tempfile.mkdtemp(prefix="trl_compare_ladkit_"))
    try:
        ctx, memory = build(ladkit_config(geometry, model_path, seed), run_dir), Memory()
        memory.start()
        conn.send({"ready": True})
        step = 0
        while conn.recv() == "step":
            start = time.perf_counter()
            row = train_step(ctx, step)
            elapsed = time.perf_counter() - start
            tokens = round(row["perf/tokens_per_s"] * row["perf/step_time_s"])  # attention-mask sum
            conn.send({"step_s": elapsed, "tokens": tokens, "completion_length": row["completion/length_mean"],
                       "reward": row["reward/mean"]})  # fmt: skip
            step += 1
        conn.send(memory.record())
        ctx.backend.close()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _trl_worker(geometry: Geometry, model_path: str, seed: int, conn) -> None:
    """TRL's own train() loop, held at the end of every generation batch by a callback that waits for "step"."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl_parity import import_trl

    from ladkit.tasks import make_task

    trainer_cls, config_cls = import_trl()
    config, loss = ladkit_config(geometry, model_path, seed), {}
    if geometry.objective == "lad":  # TRL's generation, rewards, advantages, pi_old and optimiser; ladkit's loss
        from ladkit.integrations.trl import LadkitGRPOTrainer

        trainer_cls, loss = LadkitGRPOTrainer, {"objective": "lad", "objective_config": config.objective_config}
    task = make_task(config.task)
    examples, batch = task.train_examples(), {}

    def reward(prompts, completions, example_index, **_) -> list[float]:
        """ladkit's task.score as a TRL reward function (extra dataset columns arrive as keyword lists)."""
        rewards = [r.reward for r in task.score(completions, [examples[i] for i in example_index])]
        batch["reward"] = statistics.mean(rewards)
        return rewards

    class CountingTrainer(trainer_cls):
        """GRPOTrainer that records each generation batch's real prompt + completion tokens and mean length."""

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            completion = float(out["completion_mask"].sum())
            batch["tokens"] = int(out["prompt_mask"].sum()) + int(completion)
            batch["completion_length"] = completion / len(inputs)
            return out

    mini, memory, clock = geometry.mini_batches, Memory(), {}

    class Lockstep(TrainerCallback):
        def _wait(self, control):
            if conn.recv() != "step":
                control.should_training_stop = True
            clock["start"] = time.perf_counter()

        def on_train_begin(self, _args, _state, control, **__):
            memory.start()
            conn.send({"ready": True})
            self._wait(control)

        def on_step_end(self, _args, train_state, control, **__):
            if train_state.global_step % mini:
                return
            conn.send({"step_s": time.perf_counter() - clock["start"], **batch})
            self._wait(control)

    path = model_path
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lora = LoraConfig(
        r=config.model.lora_rank,
        lora_alpha=config.model.lora_alpha,
        lora_dropout=config.model.lora_dropout,
        target_modules=config.model.target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )
    dataset = Dataset.from_list([{"prompt": e.prompt, "example_index": i} for i, e in enumerate(examples)])
    out_dir = Path(tempfile.mkdtemp(prefix="trl_compare_trl_"))
    steps = mini * 100_000  # the driver stops it
    trl_args = config_cls(
        output_dir=str(out_dir), seed=config.seed, use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
        per_device_train_batch_size=config.prompts_per_step * config.group_size // mini, steps_per_generation=mini,
        gradient_accumulation_steps=1, num_iterations=config.epochs, num_generations=config.group_size,
        max_completion_length=config.rollout.max_new_tokens, temperature=config.rollout.temperature,
        top_p=config.rollout.top_p, top_k=config.rollout.top_k, learning_rate=config.optim.lr,
        adam_beta1=config.optim.betas[0], adam_beta2=config.optim.betas[1], weight_decay=config.optim.weight_decay,
        max_grad_norm=config.optim.max_grad_norm, lr_scheduler_type="constant", warmup_steps=0,
        beta=config.grpo.beta, epsilon=config.grpo.epsilon_low, epsilon_high=config.grpo.epsilon_high,
        loss_type=config.grpo.aggregation, scale_rewards=config.advantage_scale, max_steps=steps,
        logging_steps=steps + 1, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        log_completions=False, dataloader_num_workers=0,
    )  # fmt: skip
    try:
        trainer = CountingTrainer(
            model=model,
            reward_funcs=reward,
            args=trl_args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora if geometry.lora else None,
            callbacks=[Lockstep()],
            **loss,
        )
        trainer.train()
        conn.send(memory.record())
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


# -------------------------------------------------------------------------------------------------- driver


class Contender:
    """A worker process and its end of the pipe."""

    def __init__(self, side: str, geometry: Geometry, model_path: str, seed: int):
        parent, child = mp.get_context("spawn").Pipe()
        self.side, self.conn = side, parent
        self.process = mp.get_context("spawn").Process(
            target=worker, args=(side, geometry, model_path, seed, child), daemon=True
        )
        self.process.start()

    def receive(self) -> dict:
        message = self.conn.recv()
        if "error" in message:
            raise RuntimeError(f"{self.side} worker failed: {message['error']}")
        return message

    def close(self) -> dict:
        self.conn.send("stop")
        record = self.receive()
        self.process.join(timeout=60)
        return record


def lockstep(geometry: Geometry, model_path: str, rounds: int, warmup: int, seed: int) -> dict:
    """Both contenders built, then `warmup + rounds` rounds of one step each, the order rotating per round."""
    contenders = {side: Contender(side, geometry, model_path, seed) for side in SIDES}
    try:
        for contender in contenders.values():  # built one after the other would also do: both wait when ready
            contender.receive()
        steps = {side: [] for side in SIDES}
        for r in range(warmup + rounds):
            order = SIDES if r % 2 == 0 else SIDES[::-1]
            for side in order:
                contenders[side].conn.send("step")
                steps[side].append(contenders[side].receive())
        memory = {side: contenders[side].close() for side in SIDES}
    finally:
        for contender in contenders.values():
            if contender.process.is_alive():
                contender.process.kill()
    return {side: {"steps": steps[side][warmup:], **memory[side]} for side in SIDES}


def summarise(geometry: Geometry, raw: dict, bootstrap: int) -> dict:
    """Medians per side; the per-round ratio TRL/ladkit: its median with a bootstrap 90% interval over rounds."""
    ratios = [t["step_s"] / lad["step_s"] for lad, t in zip(raw["ladkit"]["steps"], raw["trl"]["steps"], strict=True)]
    rng, medians = random.Random(0), []
    for _ in range(bootstrap):
        medians.append(statistics.median(rng.choices(ratios, k=len(ratios))))
    medians.sort()
    out = {"geometry": asdict(geometry), "name": geometry.name}
    for side in SIDES:
        steps = raw[side]["steps"]
        out[side] = {
            "step_s_median": round(statistics.median(s["step_s"] for s in steps), 4),
            "step_s": [round(s["step_s"], 4) for s in steps],
            "tokens_per_step_median": statistics.median(s["tokens"] for s in steps),
            "completion_length_mean": round(statistics.mean(s["completion_length"] for s in steps), 2),
            "reward_mean": round(statistics.mean(s["reward"] for s in steps), 3),
            **{k: v for k, v in raw[side].items() if k != "steps"},
        }
    out["ratio"] = {
        "median": round(statistics.median(ratios), 3),
        "ci90": [round(medians[int(0.05 * bootstrap)], 3), round(medians[int(0.95 * bootstrap) - 1], 3)],
        "per_round_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
    }
    return out


def sweep_summary(results: list[dict]) -> dict:
    """The minimum, median and maximum of the geometries' median ratios, each with its geometry."""
    ordered = sorted(results, key=lambda r: r["ratio"]["median"])
    middle = ordered[len(ordered) // 2]

    def at(entry: dict) -> dict:
        return {"ratio": entry["ratio"]["median"], "ci90": entry["ratio"]["ci90"], "geometry": entry["name"]}

    return {
        "min": at(ordered[0]),
        "median": at(middle),
        "max": at(ordered[-1]),
        "median_of_ratios": round(statistics.median(r["ratio"]["median"] for r in results), 3),
        "geometries_at_or_above_1.3x": sum(r["ratio"]["median"] >= 1.3 for r in results),
        "geometries": len(results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="timed lockstep rounds per geometry")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--only", default=None, help="comma-separated geometry names (default: the whole sweep)")
    parser.add_argument("--quick", action="store_true", help="two tiny geometries, 2 rounds (a smoke test)")
    parser.add_argument("--no-parity", action="store_true", help="leave the loss parity check out of the record")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trl_compare.json"))
    args = parser.parse_args()
    os.environ.update(TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    geometries = QUICK if args.quick else SWEEP
    if args.only:
        wanted = set(args.only.split(","))
        geometries = tuple(g for g in SWEEP + QUICK if g.name in wanted)
    rounds, warmup = (2, 1) if args.quick else (args.rounds, args.warmup)

    from ladkit.models.loading import resolve_model_path

    results = []
    with tempfile.TemporaryDirectory(prefix="trl_compare_bpe_") as folder:
        paths = {"char": resolve_model_path("builtin")}
        if any(g.model == "bpe" for g in geometries):
            paths["bpe"] = str(build_bpe_model(Path(folder)))
        for geometry in geometries:
            started = time.monotonic()
            raw = lockstep(geometry, paths[geometry.model], rounds, warmup, args.seed)
            results.append(summarise(geometry, raw, args.bootstrap))
            ratio, took = results[-1]["ratio"], time.monotonic() - started
            print(f"[trl_compare] {geometry.name}: TRL/ladkit {ratio['median']} {ratio['ci90']} ({took:.0f} s)",
                  file=sys.stderr, flush=True)  # fmt: skip
    record = {
        "benchmark": "trl_compare",
        "method": "lockstep: persistent process per side, one step each in turn, order rotating per round",
        "rounds": rounds,
        "warmup_rounds": warmup,
        "sweep": sweep_summary(results),
        "geometries": results,
        "settings": {"loss_type": LOSS_TYPE, "clip": CLIP, "beta": 0.0, "threads": 1, "temperature": 1.0},
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "environment": environment("torch", "transformers", "peft", "accelerate", "datasets", "trl"),
    }
    if not args.no_parity:
        from trl_parity import loss_parity

        record["loss_parity"] = loss_parity()
    write_record(record, args.out)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
