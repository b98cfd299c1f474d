"""What ``list`` and ``explain`` print, shared by their click commands and the hot path (``cli/fast.py``), so a
reply from the render cache is the same text as one from the full road. No click here, and no
import beyond the builtins (``collections.abc`` alone costs 1.5 ms)."""

from __future__ import annotations

LIST_HEADER = ("PROFILE", "NAME", "SERVICE", "SECRET", "AGE", "VALUE")

# Control characters of a shown value, as visible escapes: a plain value (one a service's admin set, too) must not
# move the cursor, retitle the window or rewrite the screen of whoever runs `list` or `explain`; nor reorder what
# follows it on the line (the bidirectional overrides and isolates) or break it (the Unicode line separators).
_VISIBLE = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_VISIBLE.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"})
_VISIBLE.update({code: f"\\u{code:04x}" for code in (0x200E, 0x200F, *range(0x2028, 0x202F), *range(0x2066, 0x206A))})


def shown(value: object) -> str:
    """``value`` as text for a terminal: control characters escaped (``\\x1b``, ``\\n``), everything else as is."""
    return str(value).translate(_VISIBLE)


def list_table(rows: list[dict[str, object]]) -> str:
    """``list``'s table: one line per row, columns padded to their widest cell, the value last and unpadded."""
    table = [LIST_HEADER]
    for r in rows:
        table.append(
            (r["profile"], r["name"], r["service"], "yes" if r["secret"] else "no", r["age"], shown(r["value"]))
        )
    widths = [max(len(str(row[i])) for row in table) for i in range(len(LIST_HEADER) - 1)]
    return "".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + str(row[-1]) + "\n"
        for row in table
    )


def explain_lines(rows: list[dict[str, object]]) -> str:
    """``explain``: ``NAME: SOURCE = VALUE`` per row, with what it shadows and an admin's allowance."""
    out = []
    for row in rows:
        if row["source"] is None:
            out.append(f"{row['name']}: not set anywhere\n")
            continue
        line = f"{row['name']}: {row['source']} = {shown(row['value'])}"
        if row["shadowed"]:
            line += f"  (shadows {', '.join(row['shadowed'])})"  # type: ignore[call-overload]
        if row.get("allowed_by_admin"):
            line += "  (allowed by the service's admin)"
        out.append(line + "\n")
    return "".join(out)


def json_text(rows: object) -> str:
    """``--json``: the rows as ``json.dumps(rows, indent=2)`` and a newline, as click.echo prints it."""
    import json

    return json.dumps(rows, indent=2) + "\n"
