"""Turn the measured medians into the markdown table the benchmark prints and saves.

Every ratio is oriented so that > 1 means "ours is better": baseline/ours for
latencies, ours/baseline for throughput. Targets come from the product brief and are
judged on our server's figures; they inform, they do not fail the run (DESIGN.md §4).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Check = Callable[[float, float], bool]  # (baseline, ours) -> target met?

PREDICTION_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    digits: int
    target: str = ""
    check: Check | None = None


METRICS: tuple[Metric, ...] = (
    Metric("p50_c1_ms", "1 row: p50 latency, 1 connection (ms)", False, 3, "≤ 1 ms", lambda b, o: o <= 1.0),
    Metric("p99_c1_ms", "1 row: p99 latency, 1 connection (ms)", False, 3),
    Metric("rps_c1", "1 row: requests/s, 1 connection", True, 0),
    Metric("rps_c8", "1 row: requests/s, 8 connections", True, 0, "≥ 8× baseline", lambda b, o: o >= 8 * b),
    Metric("rows_1k_ms", "1,000 rows: median latency (ms)", False, 2, "≤ 10 ms", lambda b, o: o <= 10.0),
    Metric("rows_100k_s", "100,000 rows: median latency (s)", False, 3, "≤ 0.4 s", lambda b, o: o <= 0.4),
)

Results = Mapping[str, float]  # metric key -> median over repeats


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(metric: Metric, baseline: float | None, ours: float | None) -> str:
    if baseline is None or ours is None or min(baseline, ours) <= 0:
        return "—"
    ratio = ours / baseline if metric.higher_is_better else baseline / ours
    return f"{ratio:.1f}×"


def _mark(passed: bool | None) -> str:
    return "—" if passed is None else ("✅ pass" if passed else "❌ fail")


def _metric_row(metric: Metric, baseline: Results, ours: Results | None) -> str:
    b = baseline.get(metric.key)
    o = ours.get(metric.key) if ours is not None else None
    passed = None
    if metric.check is not None and b is not None and o is not None:
        passed = metric.check(b, o)
    cells = [
        metric.label,
        _number(b, metric.digits),
        _number(o, metric.digits),
        _ratio(metric, b, o),
        metric.target or "—",
        _mark(passed),
    ]
    return "| " + " | ".join(cells) + " |"


def _prediction_row(errors: Mapping[str, float]) -> str:
    baseline, ours = errors.get("classic baseline"), errors.get("ours")
    passed = None if ours is None else ours <= PREDICTION_TOLERANCE
    cells = [
        "1,000 rows: max abs diff vs booster.predict",
        "—" if baseline is None else f"{baseline:.1e}",
        "—" if ours is None else f"{ours:.1e}",
        "—",
        f"≤ {PREDICTION_TOLERANCE:g}",
        _mark(passed),
    ]
    return "| " + " | ".join(cells) + " |"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def render(
    baseline: Results, ours: Results | None, prediction_errors: Mapping[str, float], context: Mapping[str, str]
) -> str:
    """The whole report: context lines, then the table."""
    lines = ["# LightGBM serving benchmark: classic BYOC sample vs ours", ""]
    lines += [f"- {name}: {value}" for name, value in context.items()]
    lines += [
        "",
        "Ratio: baseline/ours for latency, ours/baseline for throughput (> 1 means ours is better).",
        "",
        "| metric | classic baseline | ours | ratio | target (ours) | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    lines += [_metric_row(metric, baseline, ours) for metric in METRICS]
    lines.append(_prediction_row(prediction_errors))
    return "\n".join(lines) + "\n"


def render_comparison(before: Results, ours: Results, label: str) -> str:
    """Ours against another build of ours measured in the same run (``--compare-serve``)."""
    lines = [
        "",
        f"## {label} → ours (same run, interleaved)",
        "",
        "Ratio: before/ours for latency, ours/before for throughput (> 1 means ours is faster).",
        "",
        f"| metric | {label} | ours | ratio |",
        "|---|---:|---:|---:|",
    ]
    for metric in METRICS:
        b, o = before.get(metric.key), ours.get(metric.key)
        ratio = (
            "—" if b is None or o is None or min(b, o) <= 0 else f"{(o / b if metric.higher_is_better else b / o):.2f}"
        )
        lines.append(f"| {metric.label} | {_number(b, metric.digits)} | {_number(o, metric.digits)} | {ratio} |")
    return "\n".join(lines) + "\n"


def machine_summary() -> str:
    usable = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({usable} usable), {cpu_model()}; load average at start {load}"
