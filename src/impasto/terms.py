"""A term of the objective, and what an evaluator of terms is: below both evaluators.

A `Term` is one weighted loss module on one VGG layer's activations, or on the pixels themselves
(layer None: total variation; video's temporal term). The untiled `objective.Objective` and the
tiled `tiles.TiledObjective` both sum terms; `builder.build_objective` makes the terms and picks
one of them. Neither evaluator imports the other: both import this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@dataclass
class Term:
    """One weighted loss: kind is 'content', 'style', 'tv', ...; layer None means on the pixels."""

    kind: str
    layer: str | None
    weight: float
    loss: nn.Module


class Evaluator(Protocol):
    """What the optimiser minimises: pixels -> (total, parts by kind). An evaluator may also have
    `value_and_grad(pixels) -> (total, parts, gradient)` (see optimize.value_and_grad)."""

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


@runtime_checkable
class Accumulates(Protocol):
    """A pixel term's loss that adds weight x its gradient into `grad` in place and returns weight x
    its value, with no graph over the picture (the tiled evaluator uses it where a loss has it)."""

    def accumulate(self, image: torch.Tensor, weight: float, grad: torch.Tensor) -> torch.Tensor: ...


def add_part(parts: dict[str, torch.Tensor], kind: str, value: torch.Tensor) -> None:
    """Add a term's value to the parts, by kind (several style terms make one 'style' part)."""
    parts[kind] = parts[kind] + value if kind in parts else value
