"""How the benchmark shows its results: `verdict` (PASS or MISS against a target), `table`
(the plain-text table of a section) and the summary, one line per headline figure beside its
target that the sections add to `SUMMARY` as they run and `print_summary` repeats at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

# One line per headline figure (the CPU section's CPU per record, each quota case run), printed
# again at the end: "64 apps, 60/min, 300 ms: 63.1 s, quota minimum 60.0 s (1.05 x), 0 x 429".
SUMMARY: list[str] = []


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join([first, *rest]))
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_summary() -> None:
    """The figures the sections added to `SUMMARY`, if any, each beside its target."""
    if SUMMARY:
        print("\n== Summary (each figure beside its target)")
        for line in SUMMARY:
            print(f"  {line}")
