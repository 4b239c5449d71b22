"""Integer classifier points: a classifier trained as multiples of a step, so the program prints it
as small integers where free float weights would need a scale of 10^6 to keep every label.

With `--classifier-step S` (S a power of two), the last POINTS_FRACTION of training reads the
classifier's weights rounded to multiples of S, with the rounding's gradient passed straight
through (Bengio et al. 2013), and every epoch ends with the weights themselves rounded. The kept
model's weights are then exact multiples of S in float32, so its float64 scores are exact sums of
integers times S: the program's integer points (weights / S) give every input the same label,
ties included.
"""

from __future__ import annotations

import math

import torch

POINTS_FRACTION = 0.25  # the last quarter of the epochs: the temperature is low, the parts nearly settled
MIN_STEP, MAX_STEP = 2.0**-8, 2.0**4  # from a few hundred points per unit of score to a coarse 16


def check_step(step: float) -> None:
    """ValueError unless `step` is 0 (free weights) or a power of two between MIN_STEP and MAX_STEP."""
    if step == 0:
        return
    if not (math.isfinite(step) and MIN_STEP <= step <= MAX_STEP and math.log2(step).is_integer()):
        raise ValueError(f"--classifier-step must be 0 (free weights) or a power of two from {MIN_STEP} to {MAX_STEP:g} "
                         f"(0.25, 0.5, 1, ...); got {step}")


def points_start(epochs: int) -> int:
    """The first epoch (0-based) of `epochs` that trains on the rounded classifier."""
    return epochs - max(1, math.ceil(POINTS_FRACTION * epochs))


def rounded(weight: torch.Tensor, step: float) -> torch.Tensor:
    """`weight` rounded to multiples of `step` in the forward pass; the gradient passes straight through."""
    return weight + (torch.round(weight / step) * step - weight).detach()


@torch.no_grad()
def round_in_place(parameters: list[torch.Tensor], step: float) -> None:
    """Every parameter set to its nearest multiple of `step`."""
    for parameter in parameters:
        parameter.copy_(torch.round(parameter / step) * step)
