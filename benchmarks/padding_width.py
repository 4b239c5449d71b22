"""What training on the batch's own width saves in length generalization.

A length-generalization run pads every split to the longest test input (Dyck: twice the
training length), so a training batch carries columns of padding that no model reads. Training
and evaluation now cut each batch to its longest input (`train.without_padding`). For a few
cells of `tprog lengthgen`, this prints the median milliseconds of one training step (batch of
the run's size, forward, backward and Adam) and of evaluating the validation split, on batches
at the run's full width against the batch's own, alternating the two so that both see the same
load. Run it on an otherwise idle machine for absolute figures; the ratios hold beside a
low-priority job. Usage: python benchmarks/padding_width.py [--steps 7] [--cells sort:30,dyck2:20]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from transformer_programs.model import TransformerProgram
from transformer_programs.train import batch_loss, evaluate

from lengthgen_cell import cell_arguments, lengthgen_cell  # benchmarks/, beside this script
from timing import alternating_medians

TAU = 0.5  # mid-schedule temperature


def full_width_loss(model: TransformerProgram, inputs: torch.Tensor, labels: torch.Tensor, generator) -> torch.Tensor:
    """The training loss on the batch as padded, every column computed (the cost before the cut)."""
    logits = model(inputs, TAU, generator)  # (B, T, L)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=0)


def cell_figures(task: str, n: int, steps: int) -> dict:
    """Step and validation milliseconds of one lengthgen cell (seed 0), full width against cut."""
    generator = torch.Generator().manual_seed(0)
    cell = lengthgen_cell(task, n, generator)
    data, model, batch = cell.data, cell.model, cell.batch
    inputs = data.tensors["train"][0]

    def evaluate_full() -> None:
        val_x, val_y = data.tensors["val"]
        for start in range(0, len(val_x), 4096):
            model.predict(val_x[start : start + 4096])

    torch.set_flush_denormal(True)  # as the trainer's steps run
    model.train()
    full_step, cut_step = alternating_medians(lambda: cell.step(lambda: full_width_loss(model, *batch, generator)),
                                              lambda: cell.step(lambda: batch_loss(model, *batch, TAU, generator)), steps)
    torch.set_flush_denormal(False)
    model.eval()
    full_val, cut_val = alternating_medians(evaluate_full, lambda: evaluate(model, *data.tensors["val"]), max(3, steps // 2))
    width = int((inputs != 0).sum(1).max())
    return {"cell": f"{task} n = {n}", "widths": f"{inputs.shape[1]} → {width}", "full_step": full_step,
            "cut_step": cut_step, "full_val": full_val, "cut_val": cut_val}


def main() -> None:
    steps, cells = cell_arguments(__doc__.splitlines()[0], "sort:30,dyck2:20,dyck1:40")
    print(f"one thread, median of {steps} training steps (batch as the run), tau {TAU}; validation split\n")
    print("| cell | width: padded → longest training input | step ms, padded | step ms, cut | ratio "
          "| validation ms, padded | validation ms, cut | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for task, n in cells:
        f = cell_figures(task, n, steps)
        print(f"| {f['cell']} | {f['widths']} | {f['full_step']:.0f} | {f['cut_step']:.0f} | "
              f"{f['full_step'] / f['cut_step']:.2f} | {f['full_val']:.0f} | {f['cut_val']:.0f} | "
              f"{f['full_val'] / f['cut_val']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
