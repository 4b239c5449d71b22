"""What computing the relaxed classifier chunk by chunk saves in a training step.

The relaxed model's classifier reads every categorical variable's soft one-hot. It used to lay
them out as one (B*T, V*d) matrix, a transposed copy of the whole stream, and multiply once;
`program_model.linear_readout` now multiplies each chunk of variables as the layers produced
it and sums. For a few cells of `tprog lengthgen` (seed 0, the paper's training), this prints
the median milliseconds of one training step (batch of the run's size, forward, backward and
Adam) with each readout, alternating the two so that both see the same load, and the largest
difference between their logits. Run it on an otherwise idle machine for absolute figures; the
ratios hold beside a low-priority job.
Usage: python benchmarks/classifier_by_chunk.py [--steps 7] [--cells most_freq:20,sort:30,dyck1:40]
"""

from __future__ import annotations

import torch

from transformer_programs.model import program_model
from transformer_programs.train import batch_loss

from lengthgen_cell import cell_arguments, lengthgen_cell  # benchmarks/, beside this script
from timing import alternating_medians

TAU = 0.5  # mid-schedule temperature
BY_CHUNK = program_model.linear_readout


def whole_stream_readout(chunks, num, weights_cat, weights_num, bias) -> torch.Tensor:
    """The readout before: every chunk concatenated and transposed into one (B*T, V*d) matrix."""
    stream = torch.cat(chunks).flatten(1, 2).transpose(0, 1).flatten(1)  # (B*T, V*d): a copy
    logits = torch.addmm(bias, stream, weights_cat.flatten(0, 1))  # (B*T, L)
    return torch.addmm(logits, num.flatten(1).T, weights_num)  # (B*T, L)


def with_readout(readout, function):
    """`function` run with the model's classifier readout set to `readout`."""
    def call():
        program_model.linear_readout = readout
        try:
            return function()
        finally:
            program_model.linear_readout = BY_CHUNK
    return call


def cell_figures(task: str, n: int, steps: int) -> dict:
    """Step milliseconds of one lengthgen cell, whole-stream readout against chunk by chunk."""
    cell = lengthgen_cell(task, n, torch.Generator().manual_seed(0))
    model, batch = cell.model, cell.batch

    def step() -> None:
        cell.step(lambda: batch_loss(model, *batch, TAU, torch.Generator().manual_seed(1)))

    def logits() -> torch.Tensor:
        with torch.no_grad():
            return model(batch[0], TAU, torch.Generator().manual_seed(2))  # (B, T, L)

    model.train()
    torch.set_flush_denormal(True)  # as the trainer's steps run
    whole, chunked = alternating_medians(with_readout(whole_stream_readout, step), step, steps)
    torch.set_flush_denormal(False)
    difference = (with_readout(whole_stream_readout, logits)() - logits()).abs().max().item()
    return {"cell": f"{task} n = {n}", "whole": whole, "chunked": chunked, "difference": difference,
            "variables": model.classifier_cat.shape[0]}


def main() -> None:
    steps, cells = cell_arguments(__doc__.splitlines()[0], "most_freq:20,sort:30,dyck1:40")
    print(f"one thread, median of {steps} training steps (batch as the run), tau {TAU}\n")
    print("| cell | categorical variables | step ms, whole stream | step ms, by chunk | ratio | largest logit difference |")
    print("|---|---|---|---|---|---|")
    for task, n in cells:
        f = cell_figures(task, n, steps)
        print(f"| {f['cell']} | {f['variables']} | {f['whole']:.0f} | {f['chunked']:.0f} | "
              f"{f['whole'] / f['chunked']:.2f} | {f['difference']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
