"""Plain-text tables for the benchmarks' output: one column per (heading, cell) pair."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Column = tuple[str, Callable[[dict[str, Any]], str]]


def text_table(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> str:
    """``rows`` as right-aligned columns under their headings."""
    cells = [[name for name, _ in columns]] + [[cell(r) for _, cell in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells
    )
