"""Where a training step's time goes: batch scaling, forward against backward, float32 against bfloat16.

For `sort` at its default configuration. Prints four tables: milliseconds per step by batch
size (the small batches show the op-overhead floor), the forward and backward split at batch
512, the two heaviest kernel shapes in float32 and bfloat16, and (from torch.profiler) what a
step of 512 spends on the two kernels the method fixes: the per-sequence batched attention
products and the Gumbel noise of every sample. Usage:
python benchmarks/step_cost.py [--threads 2] [--steps 15]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from transformer_programs.model import ProgramConfig, TransformerProgram
from transformer_programs.config import TrainConfig
from transformer_programs.experiments.ledger import PAPER_TRAINING
from transformer_programs.data import build_dataset
from transformer_programs.runs import model_config
from transformer_programs.train import batch_loss

from timing import median_seconds  # benchmarks/timing.py, beside this script

BATCHES = (8, 64, 512, 2048)
TAU = 0.5  # mid-schedule temperature


def fixed_kernel_ms(step: Callable[[], object], head_counts: set[int], batch: int, steps: int) -> dict[str, float]:
    """Profiled milliseconds per step in attention's batched products and in Gumbel noise draws.

    An attention product is a batched matrix product over (heads x batch) small matrices, in
    the forward or the backward pass; the noise is every `uniform_` draw of the step.
    """
    attention_batches = {heads * batch for heads in head_counts}
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    totals = {"attention products": 0.0, "Gumbel noise": 0.0}
    for event in prof.key_averages(group_by_input_shape=True):
        shapes = event.input_shapes
        if event.key == "aten::bmm" and shapes and shapes[0] and shapes[0][0] in attention_batches:
            totals["attention products"] += event.self_cpu_time_total
        elif event.key == "aten::uniform_":
            totals["Gumbel noise"] += event.self_cpu_time_total
    return {name: microseconds / 1000 / steps for name, microseconds in totals.items()}


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of `run` in milliseconds, after 5 untimed calls (allocator, caches)."""
    return 1000 * median_seconds(run, repeats, warmup=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=15, help="timed steps per figure")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as the trainer does
    config = TrainConfig(task="sort", epochs=1, **PAPER_TRAINING).resolved()  # as the original trains: no gates
    data = build_dataset(config)
    model = TransformerProgram(ProgramConfig(**model_config(config, data)))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    generator = torch.Generator().manual_seed(0)
    inputs, labels = data.tensors["train"]

    def loss_of(batch: int) -> torch.Tensor:
        index = torch.randint(0, len(inputs), (batch,), generator=generator)
        return batch_loss(model, inputs[index], labels[index], TAU, generator)

    def step(batch: int) -> None:
        loss = loss_of(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    print(f"threads: {args.threads}, median of {args.steps} steps, tau {TAU}\n")
    print("| batch | " + " | ".join(str(b) for b in BATCHES) + " |")
    print("|---|" + "---|" * len(BATCHES))
    print("| ms per step | " + " | ".join(f"{median_ms(lambda: step(b), args.steps):.1f}" for b in BATCHES) + " |")

    forward = median_ms(lambda: loss_of(512), args.steps)
    whole = median_ms(lambda: step(512), args.steps)
    print(f"\n| batch 512 | forward ms | backward + Adam ms |\n|---|---|---|\n| | {forward:.1f} | {whole - forward:.1f} |")

    steps_per_epoch = math.ceil(len(inputs) / config.batch_size)  # as the trainer counts them
    heads = {model.config.heads_cat, model.config.heads_num} - {0}
    fixed = fixed_kernel_ms(lambda: step(512), heads, 512, args.steps)
    print(f"\n| step of 512 | ms (profiled) | s per epoch of {steps_per_epoch} steps |\n|---|---|---|")
    for name, ms in {**fixed, "whole step (unprofiled)": whole}.items():
        print(f"| {name} | {ms:.1f} | {ms * steps_per_epoch / 1000:.2f} |")

    print("\n| kernel | float32 us | bfloat16 us |\n|---|---|---|")
    for name, shapes, op in [
        ("stream selection GEMM (20x26 @ 26x32768)", [(20, 26), (26, 32768)], torch.mm),
        ("2048 batched 8x8 products", [(2048, 8, 8), (2048, 8, 8)], torch.bmm),
    ]:
        cells = []
        for dtype in (torch.float32, torch.bfloat16):
            a, b = (torch.randn(shape, dtype=dtype) for shape in shapes)
            cells.append(f"{1000 * median_ms(lambda: op(a, b), 10 * args.steps):.0f}")
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
