"""L0 gates: a learned switch per part and per classifier read, for programs short by construction.

Each gate is a hard-concrete variable (Louizos, Welling and Kingma, "Learning Sparse Neural
Networks through L0 Regularization", 2018): in training a sample in [0, 1] that is exactly 0 or 1
with positive probability, differentiable in its logit; the training loss adds the expected number
of open gates times `--sparsity`. A gate is closed when its deterministic value is 0; the model
then treats its part as pruned (a constant 0) or its variable as unread (TransformerProgram.apply_gates).
"""

from __future__ import annotations

import math

import torch
from torch import nn

BETA, GAMMA, ZETA = 2 / 3, -0.1, 1.1  # temperature and stretch of the hard concrete (the paper's values)
OPEN_AT_START = 3.0  # initial logit: open with probability ~0.99, so training starts from the whole model


class Gates(nn.Module):
    """`n` hard-concrete gates."""

    def __init__(self, n: int):
        super().__init__()
        self.logits = nn.Parameter(torch.full((n,), OPEN_AT_START))  # (n,)

    def sample(self, generator: torch.Generator | None) -> torch.Tensor:
        """A training sample of every gate, (n,) in [0, 1]."""
        u = torch.rand(self.logits.shape, generator=generator).clamp(1e-6, 1 - 1e-6)  # (n,)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.logits) / BETA)  # (n,)
        return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)  # (n,)

    def open_probability(self) -> torch.Tensor:
        """P(gate > 0) of every gate, (n,): the expected L0 norm, term by term."""
        return torch.sigmoid(self.logits - BETA * math.log(-GAMMA / ZETA))  # (n,)

    def closed(self) -> torch.Tensor:
        """Which gates are closed, (n,) bools: their deterministic value, clamped, is 0."""
        return torch.sigmoid(self.logits.detach()) * (ZETA - GAMMA) + GAMMA <= 0  # (n,)
