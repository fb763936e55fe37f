"""``metrics.jsonl`` cut back to a checkpoint: the rows a resumed run trains again are not kept twice."""

from __future__ import annotations

import json
from pathlib import Path

from ganzoo.safefile import atomic_target


def drop_rows_after(path: Path, step: int) -> int:
    """Remove from the log at ``path`` the rows of steps after ``step`` (training lost when the process was killed
    after its last checkpoint, which the resumed run does again) and a last line cut short by the kill, which the
    next row would otherwise be glued to; returns how many rows went. The file is replaced whole, never half
    written."""
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
    """Whether the row ``line`` logs a step after ``step``; rows without one (setup, resume) are kept."""
    try:
        row = json.loads(line)
    except ValueError:
        return False
    return isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] > step
