"""Colour preservation (Gatys et al. 2017, section 5): luminance-only transfer and colour histogram matching.

Both modes keep the content's colours in the result. 'luminance' optimises a grey image and puts
the content's chroma back at the end, so the chroma is exactly the content's; 'histogram' first
recolours the style image to the content's colour mean and covariance, then transfers as usual.
Colour space: full-range YCbCr (JPEG / BT.601), whose Y is the usual luma.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

PRESERVE_COLOR = ("luminance", "histogram")

# RGB -> YCbCr (full range, chroma centred on 0); the rows are Y, Cb, Cr.
_RGB_TO_YCC = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
_YCC_TO_RGB = np.linalg.inv(_RGB_TO_YCC)
# Luma is added to every channel unchanged: column 0 of the inverse is (1, 1, 1).
_CHROMA_TO_RGB = _YCC_TO_RGB[:, 1:]


def _as_float(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def _to_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")


def luma(rgb: np.ndarray) -> np.ndarray:
    """Y of an H x W x 3 array in [0, 1]."""
    return rgb @ _RGB_TO_YCC[0]


def chroma(rgb: np.ndarray) -> np.ndarray:
    """(Cb, Cr) of an H x W x 3 array in [0, 1], centred on 0: H x W x 2."""
    return rgb @ _RGB_TO_YCC[1:].T


def grey_luminance(image: Image.Image) -> Image.Image:
    """The image's luma as a 3-channel grey image: what the network sees in luminance mode."""
    y = luma(_as_float(image))
    return _to_image(np.repeat(y[..., None], 3, axis=2))


def match_luminance(style: Image.Image, content: Image.Image) -> Image.Image:
    """The style's luma, shifted and scaled to the content's luma mean and standard deviation, as grey.

    Without this, a dark painting would darken a bright photo even though colours are kept.
    """
    ys, yc = luma(_as_float(style)), luma(_as_float(content))
    matched = (ys - ys.mean()) * (yc.std() / max(ys.std(), 1e-6)) + yc.mean()
    return _to_image(np.repeat(matched[..., None], 3, axis=2))


def _sqrtm(cov: np.ndarray, power: float) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.clip(values, 0.0, None) ** power) @ vectors.T


def match_color_stats(source: np.ndarray, target: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """`source` pixels (N x 3) mapped linearly so their mean and covariance become `target`'s.

    x' = A (x - mu_s) + mu_t with A = Sigma_t^(1/2) Sigma_s^(-1/2), the symmetric ("image
    analogies") variant of the paper. `eps` regularises Sigma_s so a style with nearly flat colour
    directions (two-colour stripes) is not blown up along them. The result is not clipped.
    """
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    cov_s = np.cov(source, rowvar=False) + eps * np.eye(3)
    cov_t = np.cov(target, rowvar=False)
    transform = _sqrtm(cov_t, 0.5) @ _sqrtm(cov_s, -0.5)
    return (source - mu_s) @ transform.T + mu_t


def match_histogram(style: Image.Image, content: Image.Image) -> Image.Image:
    """The style image recoloured to the content's colour distribution (mean and covariance)."""
    s, c = _as_float(style), _as_float(content)
    matched = match_color_stats(s.reshape(-1, 3), c.reshape(-1, 3))
    return _to_image(matched.reshape(s.shape))


def recombine(luma_rgb: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The luma of `luma_rgb` with the chroma of `content` (both 1 x 3 x H x W in [0, 1]).

    The luma is clamped per pixel to the range in which the content's chroma stays inside the RGB
    cube, so clamping the RGB result never changes the chroma: it is exactly the content's.
    """
    to_y = luma_rgb.new_tensor(_RGB_TO_YCC[0]).view(1, 3, 1, 1)
    to_c = content.new_tensor(_RGB_TO_YCC[1:]).view(2, 3)
    back = content.new_tensor(_CHROMA_TO_RGB)  # 3 x 2
    y = (luma_rgb * to_y).sum(dim=1, keepdim=True)
    cbcr = torch.einsum("kc,nchw->nkhw", to_c, content)
    offset = torch.einsum("ck,nkhw->nchw", back, cbcr)  # per channel: RGB = Y + offset
    low = (-offset).amax(dim=1, keepdim=True)
    high = (1.0 - offset).amin(dim=1, keepdim=True)
    y = torch.maximum(torch.minimum(y, high), low)
    return (y + offset).clamp(0.0, 1.0)
