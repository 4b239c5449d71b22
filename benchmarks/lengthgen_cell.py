"""One cell of the length protocol, set up to time its training steps: the step benchmarks share it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch

from transformer_programs.config import TrainConfig
from transformer_programs.data import Dataset, build_dataset
from transformer_programs.experiments.ledger import PAPER_TRAINING
from transformer_programs.experiments.length import length_trials
from transformer_programs.model import ProgramConfig, TransformerProgram
from transformer_programs.runs import model_config


@dataclass
class Cell:
    """Seed 0 of `tprog lengthgen TASK --train-max N`: its settings, data, a fresh model, and one training batch."""

    config: TrainConfig
    data: Dataset
    model: TransformerProgram
    optimizer: torch.optim.Optimizer
    batch: tuple[torch.Tensor, torch.Tensor]  # (B, T) inputs and labels, B the run's batch size

    def step(self, loss_of: Callable[[], torch.Tensor]) -> None:
        """One optimizer step on the loss that `loss_of()` computes."""
        loss = loss_of()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def lengthgen_cell(task: str, n: int, generator: torch.Generator) -> Cell:
    """The cell's setup, as the protocol trains it (the paper's training); `generator` draws the batch."""
    config = length_trials(TrainConfig(task=task, **PAPER_TRAINING), [task], [n], 10, 1)[0].config
    data = build_dataset(config)
    model = TransformerProgram(ProgramConfig(**model_config(config, data)))
    inputs, labels = data.tensors["train"]
    index = torch.randperm(len(inputs), generator=generator)[: config.batch_size]
    return Cell(config, data, model, torch.optim.Adam(model.parameters(), lr=config.lr), (inputs[index], labels[index]))


def cell_arguments(description: str, default_cells: str) -> tuple[int, list[tuple[str, int]]]:
    """--steps and --cells from the command line, as (steps, [(task, n), ...]); one torch thread from here on."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=7, help="timed training steps per figure")
    parser.add_argument("--cells", default=default_cells, help="comma-separated TASK:n cells of tprog lengthgen")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cells = [(task, int(n)) for task, n in (cell.split(":") for cell in args.cells.split(","))]
    return args.steps, cells
