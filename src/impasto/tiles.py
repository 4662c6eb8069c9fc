"""The objective evaluated tile by tile: the same loss and gradient as untiled, in bounded memory.

A picture too large for memory at once is cut into tiles whose *interiors* partition it. Each tile
is run through the network with a halo as wide as the deepest layer's receptive field, its origin
aligned to the poolings' stride, so that the features of its interior are exactly those of the
whole picture (the zero padding at the crop's edge never reaches them).

* Content terms are local: each tile adds its interior's share of the squared error.
* Style terms are global: a Gram is a sum over positions, so pass 1 (no graph) sums every tile's
  interior Gram into the picture's Gram; the style loss and its derivative dL/dG follow exactly.
  Pass 2 back-propagates each tile against that fixed dL/dG: the gradient of <dL/dG, G_tile>
  with respect to the tile's features is the tile's share of the true gradient, and shares add.
* Terms on the pixels (total variation, video's temporal term) are cheap: evaluated whole.
* Split (`cut`): only the layers up to a pooling need run in tiles. Pass 1 also assembles the
  whole picture's activations there from the interiors; the deeper layers run on them once, whole,
  and their gradient at the cut joins each tile's pass 2 over its interior.

Pass 2 adds each crop's gradient, halo included, into the picture's gradient: a halo pixel's
influence on a neighbour's interior is counted in that neighbour's tile and only there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .errors import ImpastoError
from .losses import ContentLoss, StyleLoss, _Gram, _positions, gram_pullback, moment_sums
from .memory import HeapGuard, deep_bytes, shallow_bytes
from .runtime import release_free_memory
from .terms import Accumulates, Term, add_part
from .tile_grid import Tile, crop_of, interior, network_tiles, region, run_crop
from .vgg import LAYER_NAMES, VGGFeatures, stride

Wanted = Sequence[tuple[str, "torch.Tensor | None", bool]]
"""(layer, mask at that layer's full H x W or None, with the mean) whose Gram (or moments) sums are wanted."""


def _weights(features: torch.Tensor, mask: torch.Tensor | None, tile: Tile, s: int) -> torch.Tensor:
    """1 x (crop positions) x 1 weights: the tile's interior (times the user's mask there), 0 in the halo.

    Weighting the whole crop, rather than slicing its interior, keeps every tensor of the Gram and
    of its backward in the activations' own contiguous layout (a slice costs strided copies both ways).
    """
    h, w = features.shape[-2:]
    weights = features.new_zeros((1, 1, h, w), dtype=torch.float32)
    inside = interior(weights, tile, s)
    inside.copy_(region(mask, tile, s) if mask is not None else torch.ones_like(inside))
    return weights.reshape(1, h * w, 1)


def statistic_sum(
    features: dict[str, torch.Tensor], layer: str, mask: torch.Tensor | None, with_mean: bool, tile: Tile
) -> torch.Tensor:
    """One tile interior's un-normalised (guided) Gram X^T X, or with_mean its moments matrix's sums."""
    x, weights = _positions(features[layer]), _weights(features[layer], mask, tile, stride(layer))
    return moment_sums(x, weights) if with_mean else _Gram.apply(x * weights.to(x.dtype), 1.0)


def statistic_pullback(
    features: dict[str, torch.Tensor],
    layer: str,
    mask: torch.Tensor | None,
    with_mean: bool,
    tile: Tile,
    slope: torch.Tensor,
) -> torch.Tensor:
    """A scalar whose gradient is that of <slope, statistic_sum(...)>, without forming the Gram (pass 2)."""
    x, weights = _positions(features[layer]), _weights(features[layer], mask, tile, stride(layer))
    weighted = x * weights.to(x.dtype)
    if not with_mean:
        return gram_pullback(weighted, slope)
    c = x.shape[-1]  # moments [[G, m], [m^T, mass]]: G's slope as above, m's is linear, the mass fixed
    mean = (weighted.float() * weights).sum(1)
    return gram_pullback(weighted, slope[:, :c, :c]) + ((slope[:, :c, c] + slope[:, c, :c]) * mean).sum()


Traced = tuple[torch.Tensor, dict[str, torch.Tensor]]
"""A crop that requires grad and its features, with the graph between them."""


@dataclass
class FirstPass:
    sums: list[torch.Tensor]  # one per wanted triple
    kept: Traced | None = None  # the last tile's graph, with keep_last
    cut: torch.Tensor | None = None  # the whole picture's activations at the split, with `cut`


@torch.no_grad()
def gram_sums(
    vgg: VGGFeatures,
    pixels: torch.Tensor,
    tiles: list[Tile],
    wanted: Wanted,
    keep_last: bool = False,
    after_tile: Callable[[], None] = release_free_memory,
    cut: str | None = None,
) -> FirstPass:
    """Un-normalised (guided) Gram or moments sums over every tile's interior, one per wanted triple.

    The network runs only as deep as the deepest wanted layer, or to `cut`, whose activations are
    then assembled from the tiles' interiors. With `keep_last`, the last tile runs with its graph
    (to `cut`, or through the whole network), returned so that pass 2 starts from it.
    """
    sums: list[torch.Tensor | None] = [None] * len(wanted)
    until = cut or max((layer for layer, _, _ in wanted), key=LAYER_NAMES.index, default=None)
    first = FirstPass([])
    for number, tile in enumerate(tiles, 1):
        if keep_last and number == len(tiles):
            crop = crop_of(pixels, tile).clone().requires_grad_(True)
            with torch.enable_grad():
                features = run_crop(vgg, crop, tile, cut)
            first.kept = (crop, features)
        elif wanted or cut:
            features = run_crop(vgg, crop_of(pixels, tile), tile, until)
        else:
            continue
        for index, (layer, mask, with_mean) in enumerate(wanted):
            part, before = statistic_sum(features, layer, mask, with_mean, tile), sums[index]
            sums[index] = part if before is None else before + part
        if cut:
            first.cut = _assemble(first.cut, features[cut], tile, stride(cut), pixels.shape[-2:])
        del features
        if first.kept is None:
            after_tile()  # see HeapGuard
    first.sums = sums  # type: ignore[assignment]
    return first


def _assemble(whole: torch.Tensor | None, part: torch.Tensor, tile: Tile, s: int, size: torch.Size) -> torch.Tensor:
    """Copy a crop's interior activations into the whole picture's map (made on the first tile)."""
    if whole is None:
        shape = (1, part.shape[1], size[0] // s, size[1] // s)
        whole = part.new_empty(shape).contiguous(memory_format=torch.channels_last)
    region(whole, tile, s).copy_(interior(part, tile, s).detach())
    return whole


def mass(layer: str, mask: torch.Tensor | None, height: int, width: int) -> float:
    """What a layer's Gram is divided by: its positions, or the mask's squared mass (guided Gram)."""
    if mask is not None:
        return float(mask.float().square().sum().clamp_min(1e-8))
    s = stride(layer)
    return float((height // s) * (width // s))


class TiledObjective:
    """An `Objective` evaluated tile by tile (see the module docstring); same value and gradient.

    With `cut` (a pooling layer, see VGGFeatures.split_points) only the network's layers up to it
    run in tiles; the layers beyond it run once on the whole picture's activations there, which
    pass 1 assembles from the tiles' interiors. Beyond pool2 lie two thirds of the network's
    arithmetic but a quarter of its activations (their maps are 16-64x smaller), so a split
    evaluation repeats only the shallow layers' forward and needs a halo only as wide as theirs.
    """

    def __init__(
        self, vgg: VGGFeatures, terms: list[Term], tile: int, budget: float | None = None, cut: str | None = None
    ):
        self.vgg, self.terms, self.tile, self.budget, self.cut = vgg, terms, tile, budget, cut
        depth = LAYER_NAMES.index(cut) if cut else len(LAYER_NAMES)
        on_layers = [(i, t.layer, t) for i, t in enumerate(terms) if t.layer is not None]
        self.deep = [(layer, t) for _, layer, t in on_layers if LAYER_NAMES.index(layer) > depth]
        self.tiled = {i: (layer, t) for i, layer, t in on_layers if LAYER_NAMES.index(layer) <= depth}
        self.style = [(i, layer, t.loss) for i, (layer, t) in self.tiled.items() if isinstance(t.loss, StyleLoss)]
        for _, term in self.tiled.values():
            if not isinstance(term.loss, (ContentLoss, StyleLoss)):
                raise ImpastoError(f"the {term.kind} term cannot be evaluated in tiles")

    def tiles(self, pixels: torch.Tensor) -> list[Tile]:
        return network_tiles(self.vgg, pixels.shape[-2], pixels.shape[-1], self.tile, self.cut)

    def value_and_grad(self, pixels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Total, parts and d total / d pixels, in two passes over the tiles."""
        pixels = pixels.detach()
        tiles = self.tiles(pixels)
        largest = max((t.cy1 - t.cy0) * (t.cx1 - t.cx0) for t in tiles)
        dtype = next(self.vgg.parameters()).dtype
        guard = HeapGuard(self.budget, shallow_bytes(self.cut, dtype, largest))
        guard()  # what the optimiser freed between evaluations, before the first crop
        wanted = [(layer, loss.mask, loss.kind == "w2") for _, layer, loss in self.style]
        first = gram_sums(self.vgg, pixels, tiles, wanted, keep_last=True, after_tile=guard, cut=self.cut)
        parts: dict[str, torch.Tensor] = {}
        slopes: dict[int, torch.Tensor] = {}
        for (index, layer, loss), summed in zip(self.style, first.sums):
            norm = mass(layer, loss.mask, *pixels.shape[-2:])
            with torch.enable_grad():
                stats = (summed / norm).requires_grad_(True)
                value = self.terms[index].weight * loss.compare(stats)
                # d loss / d (the summed statistics), through the 1/norm normalisation
                (slope,) = torch.autograd.grad(value, stats)
            add_part(parts, self.terms[index].kind, value.detach())
            slopes[index] = slope / norm
        grad = torch.zeros_like(pixels)
        with torch.enable_grad():  # also when called under no_grad for the value alone
            beyond = self._deep_terms(first.cut, parts, guard)
            kept = first.kept
            for tile in reversed(tiles):  # the last tile first: pass 1 kept its graph
                self._backward_tile(pixels, tile, slopes, parts, grad, kept, beyond)
                kept = None
                # or the heap that tune_cpu keeps grows with each crop of another size, and with
                # the optimiser's print-size vectors allocated between tiles' activations
                guard()
            self._pixel_terms(pixels, parts, grad)
        order = dict.fromkeys(t.kind for t in self.terms)  # the parts in the untiled objective's order
        parts = {kind: parts[kind] for kind in order if kind in parts}
        return sum(parts.values()), parts, grad  # type: ignore[return-value]

    def _deep_terms(
        self, cut: torch.Tensor | None, parts: dict[str, torch.Tensor], guard: HeapGuard
    ) -> torch.Tensor | None:
        """The terms beyond the cut, on the whole picture: their values, and their gradient with
        respect to the activations at the cut (which pass 2 carries back through each tile)."""
        if cut is None or not self.deep:
            return None
        assert self.cut is not None
        guard(deep_bytes(self.cut, cut.dtype, cut.shape[-2] * cut.shape[-1] * stride(self.cut) ** 2))
        cut.requires_grad_(True)
        features = self.vgg.resume(cut, self.cut)
        values = [(t.kind, t.weight * t.loss(features[layer])) for layer, t in self.deep]
        for kind, value in values:
            add_part(parts, kind, value.detach())
        sum(v for _, v in values).backward()  # type: ignore[union-attr]
        return cut.grad

    def _backward_tile(
        self,
        pixels: torch.Tensor,
        tile: Tile,
        slopes: dict[int, torch.Tensor],
        parts: dict[str, torch.Tensor],
        grad: torch.Tensor,
        traced: Traced | None = None,
        beyond: torch.Tensor | None = None,
    ) -> None:
        """Pass 2 for one tile: its content share (value and gradient), its style gradient and, where
        the network is split, the deep terms' gradient `beyond` at the cut over its interior.
        `traced`: this tile's crop and features with their graph, if pass 1 kept them."""
        if traced is None:
            crop = crop_of(pixels, tile).clone().requires_grad_(True)
            features = run_crop(self.vgg, crop, tile, self.cut)
        else:
            crop, features = traced
        surrogate = crop.new_zeros(())
        for index, (layer, term) in self.tiled.items():
            loss = term.loss
            if isinstance(loss, ContentLoss):
                s = stride(layer)
                error = interior(features[layer], tile, s).float() - region(loss.target, tile, s)
                share = term.weight * loss.scale * error.square().sum() / loss.target.numel()
                surrogate = surrogate + share
                add_part(parts, term.kind, share.detach())
            elif isinstance(loss, StyleLoss):
                pullback = statistic_pullback(features, layer, loss.mask, loss.kind == "w2", tile, slopes[index])
                surrogate = surrogate + pullback
        roots, slopes_at = [surrogate], [torch.ones_like(surrogate)]
        if beyond is not None and self.cut is not None:
            s = stride(self.cut)
            roots.append(interior(features[self.cut], tile, s))
            slopes_at.append(region(beyond, tile, s))
        torch.autograd.backward(roots, slopes_at)
        assert crop.grad is not None
        grad[..., tile.cy0 : tile.cy1, tile.cx0 : tile.cx1] += crop.grad

    def _pixel_terms(self, pixels: torch.Tensor, parts: dict[str, torch.Tensor], grad: torch.Tensor) -> None:
        """Terms on the pixels themselves (TV, temporal): cheap, evaluated on the whole picture, in place
        where the term knows how (`accumulate`: no graph over a print-size picture)."""
        pixel_terms = [t for t in self.terms if t.layer is None]
        traced = []
        for term in pixel_terms:
            if isinstance(loss := term.loss, Accumulates):
                add_part(parts, term.kind, loss.accumulate(pixels, term.weight, grad))
            else:
                traced.append(term)
        if not traced:
            return
        whole = pixels.clone().requires_grad_(True)
        values = [(t.kind, t.weight * t.loss(whole)) for t in traced]
        sum(v for _, v in values).backward()  # type: ignore[union-attr]
        assert whole.grad is not None
        grad += whole.grad
        for kind, value in values:
            add_part(parts, kind, value.detach())

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total and parts (with the gradient computed too: tiles have no cheaper value-only pass)."""
        total, parts, _ = self.value_and_grad(pixels)
        return total, parts
