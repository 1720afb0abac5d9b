"""Training curves as a self-contained SVG (plain XML text: no plotting library needed)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from xml.sax.saxutils import escape

from zoo.model_cards.diagnosis import Diagnosis

WIDTH = 640
PLOT_HEIGHT = 300  # height of the plot area; the caption adds lines below it
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 72, 24, 36, 48
LOG_SCALE_DECADES = 1.5  # a log y axis when the finite losses span more than this many decades
CAPTION_CHARS = 96  # characters per caption line
LINE_HEIGHT = 16
SERIES = (("train_loss", "training loss", "#1f77b4", ""), ("val_loss", "validation loss", "#d62728", "6 3"))
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def loss_plot_svg(history: list[dict], path: Path, diagnosis: Diagnosis | None = None) -> Path:
    """Write training and validation loss per epoch, the best epoch and the diagnosis to `path` as SVG."""
    path = Path(path)
    path.write_text(loss_plot_svg_text(history, diagnosis), encoding="utf-8")
    return path


def loss_plot_svg_text(history: list[dict], diagnosis: Diagnosis | None = None) -> str:
    """The SVG document as text."""
    epochs = [_number(r.get("epoch", i + 1)) for i, r in enumerate(history)]
    epochs = [e if math.isfinite(e) else float(i + 1) for i, e in enumerate(epochs)]
    series = {key: [_number(r.get(key)) for r in history] for key, *_ in SERIES}
    finite = [v for values in series.values() for v in values if math.isfinite(v)]
    log = bool(finite) and min(finite) > 0 and math.log10(max(finite) / min(finite)) > LOG_SCALE_DECADES

    caption = _caption_lines(history, series, diagnosis)
    height = MARGIN_TOP + PLOT_HEIGHT + MARGIN_BOTTOM + LINE_HEIGHT * len(caption) + 8
    left, right, top, bottom = MARGIN_LEFT, WIDTH - MARGIN_RIGHT, MARGIN_TOP, MARGIN_TOP + PLOT_HEIGHT

    x_low, x_high = (min(epochs), max(epochs)) if epochs else (1.0, 1.0)
    if x_high - x_low < 1:
        x_low, x_high = x_low - 0.5, x_high + 0.5
    y_ticks, y_low, y_high = _log_ticks(finite) if log else _linear_ticks(finite)

    def x_of(epoch: float) -> float:
        return left + (epoch - x_low) / (x_high - x_low) * (right - left)

    def y_of(value: float) -> float:
        v, lo, hi = (math.log10(value), math.log10(y_low), math.log10(y_high)) if log else (value, y_low, y_high)
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" {FONT} font-size="12">',
        "<title>training and validation loss per epoch</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>',
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#444"/>',
    ]
    for value in y_ticks:
        y = y_of(value)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<line x1="{left - 5}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="#444"/>')
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(_tick_label(value))}</text>')
    for epoch in _epoch_ticks(x_low, x_high):
        x = x_of(epoch)
        out.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" stroke="#444"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{epoch}</text>')
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{bottom + 38}" text-anchor="middle">epoch</text>')
    y_title = "loss (log scale)" if log else "loss"
    out.append(
        f'<text x="16" y="{(top + bottom) / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + bottom) / 2:.1f})">{y_title}</text>'
    )

    for key, label, colour, dash in SERIES:
        for segment in _segments(epochs, series[key], log):
            points = " ".join(f"{x_of(e):.1f},{y_of(v):.1f}" for e, v in segment)
            dashes = f' stroke-dasharray="{dash}"' if dash else ""
            if len(segment) > 1:
                out.append(
                    f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dashes}>'
                    f"<title>{escape(label)}</title></polyline>"
                )
            for e, v in segment:
                out.append(f'<circle cx="{x_of(e):.1f}" cy="{y_of(v):.1f}" r="2.5" fill="{colour}"/>')

    best = _best(epochs, series["val_loss"]) or _best(epochs, series["train_loss"])
    if best is not None:
        epoch, value = best
        x, y = x_of(epoch), y_of(value)
        out.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#2ca02c" stroke-dasharray="2 3"/>'
        )
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="none" stroke="#2ca02c" stroke-width="2">'
            f"<title>best epoch {_tick_label(epoch)}: {value:.4g}</title></circle>"
        )
        anchor = "end" if x > (left + right) / 2 else "start"
        shift = -8 if anchor == "end" else 8
        out.append(
            f'<text x="{x + shift:.1f}" y="{top + 14}" text-anchor="{anchor}" fill="#2ca02c">'
            f"best epoch {_tick_label(epoch)} ({value:.4g})</text>"
        )
    if not finite:
        out.append(
            f'<text x="{(left + right) / 2:.1f}" y="{(top + bottom) / 2:.1f}" text-anchor="middle">'
            "no finite loss values recorded</text>"
        )

    legend_x = left + 10
    for i, (_key, label, colour, dash) in enumerate(SERIES):
        lx = legend_x + i * 150
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{lx}" y1="{top - 14}" x2="{lx + 24}" y2="{top - 14}" stroke="{colour}" '
            f'stroke-width="2"{dashes}/>'
        )
        out.append(f'<text x="{lx + 30}" y="{top - 10}">{escape(label)}</text>')

    caption_top = bottom + MARGIN_BOTTOM
    for i, line in enumerate(caption):
        weight = ' font-weight="bold"' if i == 0 and diagnosis is not None else ""
        out.append(f'<text x="{left}" y="{caption_top + (i + 1) * LINE_HEIGHT - 4}"{weight}>{escape(line)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _caption_lines(history: list[dict], series: dict, diagnosis: Diagnosis | None) -> list[str]:
    lines = []
    if diagnosis is not None:
        lines.append(f"Diagnosis: {diagnosis.verdict}")
        lines += textwrap.wrap(diagnosis.explanation, CAPTION_CHARS)
    missing = sum(1 for values in series.values() for v in values if not math.isfinite(v))
    if missing:
        lines.append(f"{missing} non-finite loss value(s) not drawn.")
    if not history:
        lines.append("The training history is empty.")
    return lines


def _segments(epochs: list[float], values: list[float], log: bool) -> list[list[tuple[float, float]]]:
    """Runs of drawable points; a NaN (or a non-positive value on a log axis) breaks the line."""
    segments, current = [], []
    for epoch, value in zip(epochs, values):
        if math.isfinite(value) and (value > 0 or not log):
            current.append((epoch, value))
        elif current:
            segments.append(current)
            current = []
    if current:
        segments.append(current)
    return segments


def _best(epochs: list[float], values: list[float]) -> tuple[float, float] | None:
    candidates = [(v, e) for e, v in zip(epochs, values) if math.isfinite(v)]
    if not candidates:
        return None
    value, epoch = min(candidates)
    return epoch, value


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _linear_ticks(values: list[float], count: int = 5) -> tuple[list[float], float, float]:
    """Round tick values and an axis range that contains them and the data."""
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low <= 1e-12 * max(abs(low), abs(high), 1e-12):
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = _nice_step(high - low, count)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    n = round((high - low) / step)
    return [round(low + i * step, 12) for i in range(n + 1)], low, high


def _log_ticks(values: list[float]) -> tuple[list[float], float, float]:
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    stride = max(1, math.ceil((high - low) / 6))
    return [10.0**k for k in range(low, high + 1, stride)], 10.0**low, 10.0**high


def _epoch_ticks(low: float, high: float, count: int = 8) -> list[int]:
    step = max(1, int(_nice_step(high - low, count)))
    first = math.ceil(low / step) * step
    return [e for e in range(int(first), int(math.floor(high)) + 1, step) if e >= low]


def _tick_label(value: float) -> str:
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}"


__all__ = ["loss_plot_svg", "loss_plot_svg_text"]
