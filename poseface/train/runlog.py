"""The run's CSV logs (train_log.csv, val_log.csv): one row a log step, one column a term.

The writer appends rows and widens the header when a term appears later (R1, the adversarial terms
after `adversarial_start`); on resume it drops the rows a killed run logged after its last checkpoint.
The reader gives the columns as floats (empty cells as NaN) for the plots."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from poseface.imageio import atomic_write

logger = logging.getLogger("poseface.train")

TRAIN_LOG = "train_log.csv"  # step, seconds, lr_codec, the loss terms (means since the last row)
VAL_LOG = "val_log.csv"  # step, psnr, ssim, psnr_input, ssim_input
LOGS = (TRAIN_LOG, VAL_LOG)


def rewrite_csv(path: Path, fieldnames: list[str], rows: list[dict[str, str]]) -> None:
    """Write a whole CSV log atomically (header + rows; missing fields left empty)."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames, restval="")
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def read_header(path: Path) -> list[str]:
    """The column names of a log ([] when there is none yet)."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return next(csv.reader(handle), [])


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of a log, as text."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def append_row(path: Path, row: dict[str, float]) -> None:
    """Append a row. A term new to the header widens it: the file is rewritten once with the new
    column, earlier rows left empty there."""
    fieldnames = read_header(path)
    new = [key for key in row if key not in fieldnames]
    if new and fieldnames:
        _, rows = read_rows(path)
        fieldnames += new
        rewrite_csv(path, fieldnames, rows)
    elif new:
        fieldnames = new
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, restval="", extrasaction="ignore")
        if handle.tell() == 0:
            writer.writeheader()
        writer.writerow(row)


def truncate_to_step(path: Path, step: int) -> None:
    """Drop the rows a killed run logged after its last checkpoint (`step`): they are logged again on resume."""
    if not path.is_file():
        return
    fieldnames, rows = read_rows(path)
    kept = [row for row in rows if int(float(row["step"])) <= step]
    if len(kept) == len(rows):
        return
    rewrite_csv(path, fieldnames, kept)
    logger.info(
        "%s: dropped %d rows logged after step %d (the run was stopped before its next checkpoint)",
        path,
        len(rows) - len(kept),
        step,
    )


def read_csv(path: Path) -> dict[str, list[float]]:
    """The columns of a log as floats (empty or unreadable cells as NaN; {} when there is no log)."""
    if not path.is_file():
        return {}
    columns: dict[str, list[float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                try:
                    columns.setdefault(key, []).append(float(value))
                except (TypeError, ValueError):
                    columns.setdefault(key, []).append(float("nan"))
    return columns
