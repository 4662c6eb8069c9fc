"""Direct (oneDNN) against Winograd F(4x4, 3x3) convolution, per layer and end to end, on this CPU (issue 38).

Prints the CPU, its measured fp32 roof (a 2048^3 matrix product), then for every 3x3 layer of VGG-19 at
each size: forward (conv + ReLU) and input gradient, direct and Winograd, in ms and in direct-equivalent
GFLOP/s (2 * Cin * Cout * 9 * H * W per pass), with the ratio and what `auto` takes. Then the network's
forward + backward to relu5_1 both ways, and (without --quick) the default 512 px run end to end both
ways in one process, alternating, with the objective of each.

    python benchmarks/winograd.py [--quick] [--sizes 128,256,512,1024] [--repeat 2] [--precision bf16]

In bf16 the Winograd layers compute in float32 from the bf16 network's activations (winograd.ConvReLU).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

from impasto import run, winograd
from impasto.runtime import tune_cpu
from impasto.samples import default_content, default_style
from impasto.vgg import CONV_NAMES, VGGFeatures, load_weights

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu4_2"]


def cpu_line() -> str:
    model, flags = platform.processor() or "?", ""
    try:
        with open("/proc/cpuinfo") as info:
            text = info.read()
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        flags = next(line for line in text.splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        pass
    kinds = [k for k in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {k}" in flags]
    return f"{model}, {torch.get_num_threads()} threads, {'/'.join(kinds) or 'no AVX2'}"


def median_ms(run: Callable[[], object], repeat: int = 5) -> float:
    run()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def roof(dtype: torch.dtype) -> float:
    a, b = torch.randn(2048, 2048).to(dtype), torch.randn(2048, 2048).to(dtype)
    return 2 * 2048**3 / median_ms(lambda: a @ b) / 1e6


def _shapes(size: int) -> list[tuple[str, int, int, int, int]]:
    """(layer, in, out, H, W) of each 3x3 layer after the first, for a size x 3/4 size picture."""
    weights = load_weights()
    out, h, w = [], size * 3 // 4, size
    for name in CONV_NAMES[1:]:
        block = int(name[4])
        cout, cin = weights.convs[name][0].shape[:2]
        out.append((name, cin, cout, h >> (block - 1), w >> (block - 1)))
    return out


def layer_rows(size: int, dtype: torch.dtype) -> list[str]:
    return [_layer_row(size, *shape, dtype=dtype) for shape in _shapes(size)]


def _layer_row(size: int, name: str, cin: int, cout: int, h: int, w: int, dtype: torch.dtype) -> str:
    """Direct in `dtype` against Winograd, which computes in float32 from and to `dtype` (as the network runs it)."""
    x = torch.randn(1, cin, h, w).to(dtype).contiguous(memory_format=torch.channels_last)
    weight, bias = (torch.randn(cout, cin, 3, 3) * 0.05).to(dtype), (torch.randn(cout) * 0.1).to(dtype)
    grad = torch.randn(1, cout, h, w).to(dtype).contiguous(memory_format=torch.channels_last)
    filters, bias32 = winograd.transform_filters(weight.float()), bias.float()
    one = [1, 1]
    direct = median_ms(
        lambda: torch.ops.mkldnn._convolution_pointwise(x, weight, bias, one, one, one, 1, "relu", [], "")
    )
    direct_back = median_ms(
        lambda: torch.ops.aten.convolution_backward(
            grad, x, weight, None, one, one, one, False, [0, 0], 1, [True, False, False]
        )
    )
    ours = median_ms(lambda: winograd.conv3x3(x.float(), filters, bias32, True).to(dtype))
    ours_back = median_ms(lambda: winograd.input_gradient(grad.float(), filters).to(dtype))
    gflop = 2 * cin * cout * 9 * h * w / 1e9
    taken = "winograd" if winograd.pays(cin, cout, dtype) else "direct"
    return (
        f"| {size} | {name} | {cin}->{cout} | {h}x{w} | {direct:.1f} / {ours:.1f} ({direct / ours:.2f}x) "
        f"| {direct_back:.1f} / {ours_back:.1f} ({direct_back / ours_back:.2f}x) "
        f"| {gflop / direct * 1e3:.0f} / {gflop / ours * 1e3:.0f} | {taken} |"
    )


def network_ms(size: int, conv: str, dtype: torch.dtype) -> float:
    net = VGGFeatures(load_weights(), LAYERS, conv=conv).to(dtype).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, size * 3 // 4, size).to(dtype)

    def step() -> None:
        pixels = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
        sum(f.square().mean() for f in net(pixels).values()).backward()  # type: ignore[union-attr]

    return median_ms(step, repeat=3)


def end_to_end(repeat: int, precision: str) -> None:
    content, style = default_content(), default_style()
    # in bf16, auto is direct (winograd.pays): the peer is Winograd at every layer it would take in fp32
    runs: dict[str, list[tuple[float, float, int]]] = {"direct": [], "auto" if precision == "fp32" else "winograd": []}
    for _ in range(repeat):
        for conv in runs:
            start = time.perf_counter()
            result = run(content, style, precision=precision, conv=conv)
            runs[conv].append((time.perf_counter() - start, result.loss, len(result.trace)))
    for conv, results in runs.items():
        seconds, each = statistics.median(r[0] for r in results), [round(r[0], 1) for r in results]
        print(f"end to end, 512 px default, {precision}, conv {conv}: {seconds:.1f} s (runs {each}), "
              f"objective {results[0][1]:.4f}, {results[0][2]} evaluations")  # fmt: skip
    other = next(conv for conv in runs if conv != "direct")
    ratio = statistics.median(r[0] for r in runs[other]) / statistics.median(r[0] for r in runs["direct"])
    objective = runs[other][0][1] / runs["direct"][0][1]
    print(f"{other} / direct: time {ratio:.2f}x, objective {objective:.4f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128 and 512 px layers, no end-to-end run")
    parser.add_argument("--sizes", default="128,256,512,1024")
    parser.add_argument("--repeat", type=int, default=2, help="end-to-end runs per algorithm")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="the network's dtype")
    args = parser.parse_args()
    tune_cpu()
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    print(f"CPU: {cpu_line()}; roofs (2048^3 matmul): fp32 {roof(torch.float32):.0f} GFLOP/s, "
          f"bf16 {roof(torch.bfloat16):.0f}; network in {args.precision}")  # fmt: skip
    sizes = [128, 512] if args.quick else [int(s) for s in args.sizes.split(",")]
    print("| px | layer | channels | HxW | forward ms direct / winograd | input gradient ms | "
          "forward GFLOP/s (direct-equivalent) | auto |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        print("\n".join(layer_rows(size, dtype)), flush=True)
    for size in sizes:
        times = {conv: network_ms(size, conv, dtype) for conv in ("direct", "winograd", "auto")}
        print(f"network forward+backward to relu5_1 at {size}x{size * 3 // 4}: "
              + ", ".join(f"{c} {t:.0f} ms" for c, t in times.items())
              + f"; auto / direct {times['auto'] / times['direct']:.2f}x", flush=True)  # fmt: skip
    if not args.quick:
        end_to_end(args.repeat, args.precision)


if __name__ == "__main__":
    main()
