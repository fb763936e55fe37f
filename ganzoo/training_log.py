"""``metrics.jsonl`` cut back to a checkpoint: the rows a resumed run trains again are not kept twice."""

from __future__ import annotations

import json
from pathlib import Path

from ganzoo.safefile import atomic_target


def drop_rows_after(path: Path, step: int) -> int:
    """Remove from the log at ``path`` the rows of steps after ``step`` (training lost when the process was killed
    after its last checkpoint, which the resumed run does again), a last line cut short by the kill, which the
    next row would otherwise be glued to, and lines that are no row at all (the zeros a crash can leave in a
    file's last block); returns how many lines went. The file is replaced whole, never half written."""
    if not path.is_file():
        return 0
    text = path.read_text(errors="replace")
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if line.endswith("\n") and not _after(line, step)]
    if len(kept) == len(lines):
        return 0
    with atomic_target(path) as tmp:
        tmp.write_text("".join(kept))
    return len(lines) - len(kept)


def _after(line: str, step: int) -> bool:
    """Whether ``line`` is no row, or a row logging a step after ``step``; rows without one (setup, resume) stay."""
    row = read_row(line)
    return row is None or (isinstance(row.get("step"), int) and row["step"] > step)


def read_row(line: str) -> dict | None:
    """The row ``line`` holds, or None for a line that holds none (damaged, or a blank one)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def read_rows(path: Path) -> list[dict]:
    """The rows of the log at ``path``, passing over lines that hold none (a damaged log still plots)."""
    rows = (read_row(line) for line in path.read_text(errors="replace").splitlines())
    return [row for row in rows if row is not None]
