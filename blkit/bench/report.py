"""Outputs of ``blkit bench``: results.json, results.md (tables with speedups), PNG plots."""
import json
import pathlib
from collections import defaultdict

REFERENCE_PROVIDERS = ("reference", "reference-compiled")


def _speedups(records):
    """{(name, shape): {provider: median_ms}} for the speedup columns."""
    table = defaultdict(dict)
    for r in records:
        table[(r["name"], tuple(r["shape"]))][r["provider"]] = r["median_ms"]
    return table


def markdown(result: dict) -> str:
    copy = result["copy_bandwidth_gbps"]
    lines = [
        f"# blkit bench on {result['device']}",
        "",
        f"blkit {result['blkit']}, torch {result['torch']}, triton {result['triton']}, commit {result['commit']}, "
        f"{result['timestamp']}. Measured copy bandwidth: {copy:.1f} GB/s. "
        "Speedups are reference time / provider time (median over median), from one run.",
        "",
        "| op | shape | provider | median ms | p20 | p80 | GB/s | % copy | vs reference | vs compiled | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    times = _speedups(result["records"])
    for r in result["records"]:
        base = times[(r["name"], tuple(r["shape"]))]

        def ratio(provider, base=base, median=r["median_ms"]):
            return f"{base[provider] / median:.1f}x" if provider in base else "-"

        gbps = f"{r['gbps']:.1f}" if r["gbps"] else "-"
        frac = f"{100 * r['gbps'] / copy:.0f}%" if r["gbps"] else "-"
        peak = f"{r['peak_mem_bytes'] / 2**20:.1f}" if r["peak_mem_bytes"] is not None else "-"
        extra = f" ({r['samples_per_s']:.2f} samples/s)" if "samples_per_s" in r else ""
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"| {r['name']} | {shape} | {r['provider']}{extra} | {r['median_ms']:.3f} | {r['p20_ms']:.3f} | "
                     f"{r['p80_ms']:.3f} | {gbps} | {frac} | {ratio('reference')} | {ratio('reference-compiled')} | "
                     f"{peak} |")
    return "\n".join(lines) + "\n"


def plot_speedups(result: dict, path) -> None:
    """Bars: speedup of each blkit provider over the eager and the compiled reference, per op (largest
    shape measured at the authors' size B=64, N=256, C=64)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = _speedups(result["records"])
    rows = []
    for (name, shape), by_provider in times.items():
        if shape[0] != 64 or shape[1:] != (256, 64) or "reference" not in by_provider:
            continue
        for provider, ms in by_provider.items():
            if provider.startswith("blkit"):
                rows.append((f"{name}\n{provider}", by_provider["reference"] / ms,
                             by_provider.get("reference-compiled", float("nan")) / ms))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 2), 5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r[1] for r in rows], width=0.4, label="vs reference (eager)")
    ax.bar([x + 0.2 for x in xs], [r[2] for r in rows], width=0.4, label="vs reference (torch.compile)")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r[0] for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("speedup (x, log scale)")
    ax.set_title(f"blkit speedup at B=64, N=256, C=64\n{result['device']}", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_bandwidth(result: dict, path) -> None:
    """Achieved GB/s per (op, provider) with the measured copy bandwidth as a line: against problem size when
    the run has several sizes (full run), as bars when it has one (``--quick``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = defaultdict(list)
    for r in result["records"]:
        if r["gbps"] and r["shape"][-1] == 64 and not r["name"].startswith("e2e") and "S=16" not in r["name"]:
            numel = r["shape"][0] * r["shape"][1] * r["shape"][2]
            series[(r["name"], r["provider"])].append((numel, r["gbps"]))
    copy = result["copy_bandwidth_gbps"]
    sizes = {numel for points in series.values() for numel, _ in points}
    if len(sizes) <= 1:
        labels = sorted(series)
        fig, ax = plt.subplots(figsize=(9, 0.28 * len(labels) + 1.5))
        colors = ["tab:blue" if provider.startswith("blkit") else "tab:gray" for _, provider in labels]
        ax.barh(range(len(labels)), [series[k][0][1] for k in labels], color=colors)
        ax.set_yticks(range(len(labels)), [f"{name}  {provider}" for name, provider in labels], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(copy, color="black", linestyle="--", label=f"copy {copy:.0f} GB/s")
        ax.set_xscale("log")
        ax.set_xlabel("achieved GB/s (logical bytes / time); blue: blkit, grey: reference and others")
        size = f", {next(iter(sizes))} elements" if sizes else ""
        ax.set_title(f"Bandwidth on {result['device']}{size}", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    else:
        fig, ax = plt.subplots(figsize=(12, 6))
        for (name, provider), points in sorted(series.items()):
            points.sort()
            style = "-" if provider.startswith("blkit") else ":"
            ax.plot([p[0] for p in points], [p[1] for p in points], style, marker="o", markersize=3,
                    label=f"{name} {provider}")
        ax.axhline(copy, color="black", linestyle="--", label=f"copy {copy:.0f} GB/s")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("elements (B x N x C, C = 64)")
        ax.set_ylabel("achieved GB/s (logical bytes / time)")
        ax.set_title(f"Bandwidth on {result['device']}", fontsize=10)
        ax.legend(fontsize=6, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_all(result: dict, output_dir) -> None:
    output_dir = pathlib.Path(output_dir)
    (output_dir / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (output_dir / "results.md").write_text(markdown(result))
    plot_speedups(result, output_dir / "speedup.png")
    plot_bandwidth(result, output_dir / "bandwidth.png")
