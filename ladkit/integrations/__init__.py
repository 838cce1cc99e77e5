"""LAD inside the engines users already scale with: TRL (accelerate: DDP, FSDP, DeepSpeed) and verl (Ray).

ladkit writes no distributed engine of its own. Each plug-in replaces only the engine's policy loss with
`ladkit.objectives.objective_loss` (the very function ladkit's trainer calls) and checks the engine's version,
so a changed engine is a one-line error, never a silent fallback to GRPO:

    trl.py        LadkitGRPOTrainer (a GRPOTrainer whose loss is ladkit's objective)
    trl_callback.py   LadkitRunCallback: a TRL run as a ladkit run folder (trl_tracking.py: its tracked.jsonl)
    verl.py       registers loss_mode "lad" in verl's policy-loss registry; converts verl's metrics log
    runfolder.py  engine metrics -> ladkit metric keys, written as a ladkit run folder `ladkit compare` reads
    configs/      accelerate configs: DDP on CPU, FSDP, DeepSpeed ZeRO-2/3

Nothing here is imported by the rest of ladkit: the engines are optional (extras `bench`/`trl`, `verl`).
"""
