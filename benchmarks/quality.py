"""Picture quality at the defaults: does the result keep the photo, take the painting, and paint
(strokes, colours) rather than paste the painting's objects into the photo?

Every painting in ../shared/examples on both photos, plus leakage probes: scikit-image's
`astronaut` (a face) and `chelsea` (a cat) used as the "painting" on a landscape photo (The Scream's
figure is already in the set). Each pair is rendered in its own process at the defaults (plus any
`--set` overrides), then measured against its inputs:

* ssim: luminance SSIM of the result to the photo (skimage.metrics.structural_similarity);
* feat: VGG-19 feature distance to the photo at relu3_2, a layer not in the content loss,
  mean squared difference / the photo's mean square;
* style: Gram distance to the painting at held-out layers relu1_2, relu2_2, relu3_4, relu4_4
  (none in the style loss), per layer mean squared Gram difference / the painting Gram's mean
  square, averaged over the four layers;
* self: the same distance from the painting's own halves (left, right, top, bottom, at the same
  scale) to the whole painting, and `x self` = style / self. A yardstick that no collage sets:
  a result made of nothing but the painting's strokes, without its layout, is about this far;
  a result much closer than that has reproduced the painting's composition (docs/quality.md);
* pasted: how much more the result's object parts look like the painting's than the photo's do
  (impasto.score.object_likeness at relu5_1). At 512 px: 0.01-0.10 at the defaults, 0.14-0.28 for
  the old defaults' collages. A pointer for the eye, not a substitute for it;
* seconds (the run itself, weights loaded) and peak memory (the child's own VmHWM).

A contact sheet (photo | painting | result per row, labelled) goes to --out. Timings on a shared
machine move with its load: compare runs as ratios (`--against earlier.json`), not as absolutes.

    python benchmarks/quality.py [--size 512] [--pairs tubingen/starry_night,...] [--set key=value ...]
                                 [--out docs/quality.jpg] [--json figures.json] [--against old.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from measured import run_python
from PIL import Image, ImageDraw
from skimage.metrics import structural_similarity

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT.parent / "shared" / "examples"
PHOTOS = ("tubingen", "golden_gate")
PAINTINGS = ("starry_night", "shipwreck", "the_scream", "udnie", "wave")
PROBES = (("golden_gate", "skimage:astronaut"), ("tubingen", "skimage:chelsea"))
FEATURE_LAYER = "relu3_2"
HELD_OUT = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
TILE = (240, 180)  # each picture fits this box on the sheet
LABEL = 18


def all_pairs() -> list[tuple[str, str]]:
    return [(photo, painting) for photo in PHOTOS for painting in PAINTINGS] + list(PROBES)


def pair_name(photo: str, painting: str) -> str:
    return f"{photo}/{painting.removeprefix('skimage:')}"


def load(name: str) -> Image.Image:
    """An example by name ('tubingen') or a scikit-image sample ('skimage:astronaut')."""
    if name.startswith("skimage:"):
        import skimage.data

        return Image.fromarray(getattr(skimage.data, name.split(":", 1)[1])()).convert("RGB")
    path = EXAMPLES / f"{name}.jpg"
    if not path.is_file():
        raise SystemExit(f"{path} not found (the shared examples folder is needed)")
    return Image.open(path).convert("RGB")


def parse_value(key: str, text: str) -> Any:
    """--set values: layer maps as 'relu1_1:1,relu2_1:0.5', lists as '300,150', else JSON or text."""
    if key.endswith("_layers"):
        return {name: float(w or 1) for name, _, w in (item.partition(":") for item in text.split(",") if item)}
    if key in ("iterations", "style_blend", "style_scales"):
        return [float(v) if "." in v else int(v) for v in text.split(",")]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def overrides(settings: list[str]) -> dict[str, Any]:
    out = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        out[key] = parse_value(key, value)
    return out


def render_one(photo: str, painting: str, output: str, size: int, settings: list[str]) -> None:
    """Child process: one stylization at the defaults (+ overrides); prints its seconds as JSON."""
    import impasto
    from impasto.runtime import tune_cpu

    tune_cpu()
    result = impasto.run(load(photo), load(painting), size=size, **overrides(settings))
    result.image.save(output)
    print(json.dumps({"seconds": result.seconds}))


@dataclass
class Row:
    pair: str
    ssim: float
    feat: float
    style: float
    self: float
    pasted: float
    seconds: float
    peak_mib: float


class Judge:
    """The measuring network (fp32, all layers measured) and the metrics of one result."""

    def __init__(self) -> None:
        from impasto.objective import features
        from impasto.vgg import VGGFeatures, load_weights

        self.vgg = VGGFeatures(load_weights(None), [FEATURE_LAYER, *HELD_OUT, "relu5_1"])
        self.features = features

    def feats(self, image: Image.Image) -> dict[str, torch.Tensor]:
        from impasto.imageio import pil_to_tensor

        return self.features(self.vgg, pil_to_tensor(image))

    def measure(self, photo: Image.Image, painting: Image.Image, result: Image.Image) -> tuple[float, ...]:
        """ssim, feat, style, self and pasted (see the module docstring) of one result."""
        from impasto.imageio import resize_longest
        from impasto.score import feature_likeness

        photo = photo.resize(result.size, Image.Resampling.LANCZOS)
        ssim = structural_similarity(np.asarray(photo.convert("L")), np.asarray(result.convert("L")), data_range=255)
        out, ref = self.feats(result), self.feats(photo)
        feat = ((out[FEATURE_LAYER] - ref[FEATURE_LAYER]).square().mean() / ref[FEATURE_LAYER].square().mean()).item()
        painting = resize_longest(painting, max(result.size))
        whole = self.feats(painting)
        w, h = painting.size
        halves = [(0, 0, w // 2, h), (w // 2, 0, w, h), (0, 0, w, h // 2), (0, h // 2, w, h)]
        own = np.mean([self.style_distance(self.feats(painting.crop(box)), whole) for box in halves])
        pasted = feature_likeness(out["relu5_1"], whole["relu5_1"]) - feature_likeness(ref["relu5_1"], whole["relu5_1"])
        return float(ssim), feat, self.style_distance(out, whole), float(own), pasted

    @staticmethod
    def style_distance(out: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> float:
        """Mean over the held-out layers of the squared Gram difference / the reference Gram's mean square."""
        from impasto.losses import gram_matrix

        dists = []
        for layer in HELD_OUT:
            g_out, g_ref = gram_matrix(out[layer]), gram_matrix(ref[layer])
            dists.append(((g_out - g_ref).square().mean() / g_ref.square().mean()).item())
        return float(np.mean(dists))


def tile(image: Image.Image) -> Image.Image:
    scale = min(TILE[0] / image.width, TILE[1] / image.height)
    copy = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", TILE, (255, 255, 255))
    canvas.paste(copy, ((TILE[0] - copy.width) // 2, (TILE[1] - copy.height) // 2))
    return canvas


def contact_sheet(rows: list[tuple[Row, list[Image.Image]]], title: str) -> Image.Image:
    """photo | painting | result per row, each row under a label with its figures."""
    height = LABEL + len(rows) * (TILE[1] + LABEL)
    sheet = Image.new("RGB", (3 * TILE[0], height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 3), title, fill=(0, 0, 0))
    for index, (row, images) in enumerate(rows):
        top = LABEL + index * (TILE[1] + LABEL)
        caption = (
            f"{row.pair}   SSIM {row.ssim:.3f}  feat {row.feat:.3f}  style {row.style:.3f}"
            f" ({row.style / row.self:.2f}x self)  pasted {row.pasted:+.3f}  {row.seconds:.0f} s"
        )
        draw.text((4, top + 3), caption, fill=(0, 0, 0))
        for column, image in enumerate(images):
            sheet.paste(tile(image), (column * TILE[0], top + LABEL))
    return sheet


def report(rows: list[Row], against: dict[str, dict[str, float]] | None) -> None:
    head = f"{'pair':28} {'ssim':>6} {'feat':>6} {'style':>7} {'self':>7} {'x self':>6} {'pasted':>6}"
    head += f" {'s':>6} {'MiB':>6}"
    if against:
        head += f"   {'ssim was':>8} {'style x':>7} {'time x':>6}"
    print(head)
    ratios = [r.style / r.self for r in rows]
    for row, ratio in zip(rows + [median_row(rows)], ratios + [statistics.median(ratios)], strict=True):
        line = f"{row.pair:28} {row.ssim:6.3f} {row.feat:6.3f} {row.style:7.4f} {row.self:7.4f}"
        line += f" {ratio:6.2f} {row.pasted:+6.3f} {row.seconds:6.1f} {row.peak_mib:6.0f}"
        old = (against or {}).get(row.pair)
        if old:
            line += f"   {old['ssim']:8.3f} {row.style / old['style']:7.2f} {row.seconds / old['seconds']:6.2f}"
        print(line)


def median_row(rows: list[Row]) -> Row:
    keys = ("ssim", "feat", "style", "self", "pasted", "seconds", "peak_mib")
    return Row("median", **{k: statistics.median(getattr(r, k) for r in rows) for k in keys})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", help="comma-separated photo/painting names (default: the whole set)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="StyleConfig override")
    parser.add_argument("--out", default=str(ROOT / "docs" / "quality.jpg"), help="contact sheet path")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--against", help="an earlier --json: print ratios to it")
    parser.add_argument("--renders", help="keep each result here (default: a temporary folder)")
    parser.add_argument("--render-one", nargs=3, metavar=("PHOTO", "PAINTING", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render_one:
        render_one(*args.render_one, args.size, args.set)
        return
    overrides(args.set)  # fail on a malformed --set before the first render
    pairs = all_pairs()
    if args.pairs:
        wanted = set(args.pairs.split(","))
        pairs = [p for p in pairs if pair_name(*p) in wanted]
        if len(pairs) != len(wanted):
            raise SystemExit(f"unknown pairs; choose from {', '.join(pair_name(*p) for p in all_pairs())}")
    renders = Path(args.renders or tempfile.mkdtemp(prefix="impasto-quality-"))
    renders.mkdir(parents=True, exist_ok=True)
    judge, rows = Judge(), []
    for photo, painting in pairs:
        name = pair_name(photo, painting)
        output = renders / f"{name.replace('/', '__')}.png"
        sets = [x for s in args.set for x in ("--set", s)]
        child = run_python(
            [__file__, "--size", str(args.size), *sets, "--render-one", photo, painting, str(output)], ROOT
        )
        seconds = json.loads(child.stdout.strip().splitlines()[-1])["seconds"]
        images = [load(photo), load(painting), Image.open(output).convert("RGB")]
        row = Row(name, *judge.measure(*images), seconds, child.peak_mib)
        ratio = row.style / row.self
        print(f"{name}: ssim {row.ssim:.3f} style {row.style:.4f} ({ratio:.2f}x self) pasted {row.pasted:+.3f}")
        rows.append((row, images))
    settings = " ".join(args.set) or "defaults"
    sheet = contact_sheet(rows, f"impasto {args.size} px, {settings}: photo | painting | result")
    sheet.save(args.out, quality=88)
    against = {r["pair"]: r for r in json.loads(Path(args.against).read_text())["rows"]} if args.against else None
    report([r for r, _ in rows], against)
    if args.json:
        figures = {"size": args.size, "set": args.set, "rows": [asdict(r) for r, _ in rows]}
        figures["median"] = asdict(median_row([r for r, _ in rows]))
        Path(args.json).write_text(json.dumps(figures, indent=1))
    print(f"sheet: {args.out}; renders: {renders}", file=sys.stderr)


if __name__ == "__main__":
    main()
