"""Writing evaluation results: a Markdown table (one row per model), per-image CSV and a JSON document."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from poseface.imageio import atomic_write
from poseface.metrics.folders import EvaluationResult, skipped_lines
from poseface.metrics.suite import COLUMNS

REFERENCE_ROWS = ("gt",)  # rows never marked best


def _write_text(path: Path, text: str, replace: bool) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), replace)


def report_paths(output: str | os.PathLike) -> dict[str, Path]:
    """OUTPUT as .md (the suffix added when missing), and the .csv and .json beside it."""
    output = Path(output)
    if output.suffix.lower() != ".md":
        output = output.with_suffix(".md") if output.suffix else output.with_name(output.name + ".md")
    return {"markdown": output, "csv": output.with_suffix(".csv"), "json": output.with_suffix(".json")}


def format_value(column: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{COLUMNS.get(column, ('', False, 4))[2]}f}"


def header(column: str) -> str:
    name, higher, _ = COLUMNS.get(column, (column, False, 4))
    return f"{name} {'↑' if higher else '↓'}"


def table_columns(results: list[EvaluationResult]) -> list[str]:
    columns: list[str] = []
    for result in results:
        for column in list(result.columns) + list(result.summary):
            if column not in columns:
                columns.append(column)
    order = list(COLUMNS)
    return sorted(columns, key=lambda c: order.index(c) if c in order else len(order))


def markdown_table(results: list[EvaluationResult]) -> str:
    """| Method | PSNR ↑ | ... | with the best value of each column in bold (when there are several rows)."""
    columns = table_columns(results)
    lines = [
        "| Method | " + " | ".join(header(c) for c in columns) + " | Images |",
        "|---|" + "---|" * len(columns) + "---|",
    ]
    best: dict[str, float] = {}
    if sum(r.label not in REFERENCE_ROWS for r in results) > 1:
        for column in columns:
            higher = COLUMNS.get(column, ("", False, 0))[1]
            # the ground truth's own row is a reference, not a competitor
            values = [
                r.summary[column]
                for r in results
                if r.label not in REFERENCE_ROWS and math.isfinite(r.summary.get(column, float("nan")))
            ]
            if values:
                best[column] = max(values) if higher else min(values)
    for result in results:
        cells = []
        for column in columns:
            text = format_value(column, result.summary.get(column))
            if column in best and result.label not in REFERENCE_ROWS and result.summary.get(column) == best[column]:
                text = f"**{text}**"
            cells.append(text)
        lines.append(f"| {result.label} | " + " | ".join(cells) + f" | {len(result.rows)} |")
    return "\n".join(lines)


def markdown_report(results: list[EvaluationResult], title: str = "Evaluation", notes: list[str] | None = None) -> str:
    parts = [f"# {title}", "", markdown_table(results), ""]
    descriptions = list(dict.fromkeys(d for r in results for d in r.descriptions))
    if descriptions:
        parts += ["Metrics: " + "; ".join(descriptions) + ".", ""]
    unavailable = dict(item for r in results for item in r.unavailable.items())
    for name, reason in unavailable.items():
        parts.append(f"- {name} not computed: {reason}")
    for result in results:
        for line in skipped_lines(result.skipped):
            parts.append(f"- {result.label}: {line}")
    parts += [f"- {note}" for note in notes or []]
    return "\n".join(parts).rstrip() + "\n"


def per_image_csv(results: list[EvaluationResult]) -> str:
    columns = [c for c in table_columns(results) if any(c in row for r in results for row in r.rows.values())]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "image", *columns])
    for result in results:
        for name, values in result.rows.items():
            writer.writerow([result.label, name, *(repr(float(values[c])) if c in values else "" for c in columns)])
    return buffer.getvalue()


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_reports(
    results: list[EvaluationResult],
    output: str | os.PathLike,
    title: str = "Evaluation",
    notes: list[str] | None = None,
    extra: dict | None = None,
    replace: bool = True,
) -> dict[str, Path]:
    """Write OUTPUT (.md), OUTPUT.csv and OUTPUT.json (same stem); returns the paths.
    `replace=False`: an existing file is never replaced (PoseFaceError)."""
    paths = report_paths(output)
    document = {"title": title, "results": [r.to_dict() for r in results], "notes": notes or [], **(extra or {})}
    texts = {
        "markdown": markdown_report(results, title, notes),
        "csv": per_image_csv(results),
        "json": json.dumps(_json_safe(document), indent=2) + "\n",
    }
    return {kind: _write_text(paths[kind], texts[kind], replace) for kind in paths}
