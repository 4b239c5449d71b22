"""Whether a length trial fits one sitting on two threads: training steps on one thread against two.

The length protocol runs each trial on one thread, two trials at once on the 2-core machine. A
trial that trains longer than a sitting finishes only on a machine that keeps its checkpoints
between sittings. This times the training step of a few cells of `tprog lengthgen` (seed 0, a
batch of the run's size, forward, backward and Adam) on one torch thread and on two, alternating
the two, and prints each trial's training hours both ways (steps an epoch times epochs, the
validation passes aside) against the sitting's length. Run it on an otherwise idle machine.
Usage: python benchmarks/cell_threads.py [--steps 7] [--cells most_freq:40,dyck1:40]
"""

from __future__ import annotations

import math

import torch

from transformer_programs.train import batch_loss

from lengthgen_cell import cell_arguments, lengthgen_cell  # benchmarks/, beside this script
from timing import alternating_medians

TAU = 0.5  # mid-schedule temperature
SITTING_HOURS = 3.0  # one sitting's length on this project's machines


def main() -> None:
    steps, cells = cell_arguments(__doc__.splitlines()[0], "most_freq:40,dyck1:40")
    print(f"median of {steps} training steps a figure, tau {TAU}; hours: a trial's training steps\n")
    print("| cell | steps a trial | step ms, 1 thread | step ms, 2 threads | speed-up | hours, 1 thread "
          f"| hours, 2 threads | fits {SITTING_HOURS:g} h on 2 threads |")
    print("|---|---|---|---|---|---|---|---|")
    for task, n in cells:
        generator = torch.Generator().manual_seed(0)
        cell = lengthgen_cell(task, n, generator)
        model, batch, config = cell.model, cell.batch, cell.config
        trial_steps = math.ceil(len(cell.data.tensors["train"][0]) / config.batch_size) * config.epochs

        def step_on(threads: int) -> None:
            torch.set_num_threads(threads)
            cell.step(lambda: batch_loss(model, *batch, TAU, generator))

        torch.set_flush_denormal(True)  # as the trainer's steps run
        model.train()
        one, two = alternating_medians(lambda: step_on(1), lambda: step_on(2), steps)
        torch.set_flush_denormal(False)
        hours_one, hours_two = (ms * trial_steps / 3.6e6 for ms in (one, two))
        print(f"| {task} n = {n} | {trial_steps} | {one:.0f} | {two:.0f} | {one / two:.2f} | {hours_one:.2f} "
              f"| {hours_two:.2f} | {'yes' if hours_two <= SITTING_HOURS else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
