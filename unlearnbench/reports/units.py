"""Numbers in the units a person reads: percentages, ms/s, kB/MB/GB, "×", k/M.

Only Markdown, HTML and the terminal use these; CSV and JSON keep the raw
numbers. A metric's unit (declared by its evaluator, stored with every value)
picks the format, so a third-party metric gets the same treatment:

- ``fraction``: a percentage with one decimal, ``89.4 ± 1.2`` (the header says %);
- ``s``: ``ms`` below one second, else ``s``, three significant digits;
- ``bytes``: ``kB``/``MB``/``GB`` (powers of 1000);
- ``x``: a factor, ``6.1×`` (``66k×`` when large);
- ``samples``: counts with ``k``/``M``;
- ``AUC``: three decimals; anything else: four significant digits.

The interval is written in the same scale as its mean (``1.2 ± 0.3 ms``).
"""

from __future__ import annotations

import math
from typing import Any

DASH = "–"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _scale(unit: str, value: float) -> tuple[float, str, str]:
    """(divisor, suffix, number format) for ``value`` in ``unit``."""
    size = abs(value)
    if unit == "fraction":
        return 0.01, "", ".1f"
    if unit == "s":
        return (1e-3, " ms", ".3g") if size < 1 else (1.0, " s", ".3g")
    if unit == "bytes":
        for divisor, suffix in ((1e9, " GB"), (1e6, " MB"), (1e3, " kB")):
            if size >= divisor:
                return divisor, suffix, ".3g"
        return 1.0, " B", ".0f"
    if unit in ("x", "samples"):
        mark = "×" if unit == "x" else ""
        for divisor, suffix in ((1e6, "M"), (1e3, "k")):
            if size >= divisor:
                return divisor, suffix + mark, ".3g"
        return 1.0, mark, ".3g" if unit == "x" else ".0f"
    if unit == "AUC":
        return 1.0, "", ".3f"
    return 1.0, "", ".4g"


def format_unit(value: Any, ci: Any = None, unit: str = "") -> str:
    """One mean (± its 95% half-width) in ``unit``'s readable scale; an en dash if missing."""
    if _missing(value):
        return DASH
    number = float(value)
    divisor, suffix, spec = _scale(unit, number)
    text = format(number / divisor, spec)
    if _missing(ci):
        return text + suffix
    half = float(ci)
    # a constant over seeds prints ± 0, not floating-point dust like ± 2.1e-17
    half = 0.0 if half <= 1e-9 * max(1.0, abs(number)) else half
    ci_spec = {"fraction": ".1f", "AUC": ".3f"}.get(unit, ".2g")
    ci_text = format(half / divisor, ci_spec) if half else "0"
    if suffix.startswith(" "):  # a unit word: "1.2 ± 0.3 ms"
        return f"{text} ± {ci_text}{suffix}"
    if not half and suffix:  # "66k× ± 0", not "66k× ± 0k×"
        return f"{text}{suffix} ± 0"
    return f"{text}{suffix} ± {ci_text}{suffix}"  # "5.45× ± 0.3×", "66k ± 1.1k"


def format_ratio(value: Any, factor: Any = None, unit: str = "x") -> str:
    """A geometric mean and its 95% interval ``[value / factor, value * factor]``:
    ``138× (12×–1.6k×)``; the factor is multiplicative, so no ± is printed."""
    if _missing(value):
        return DASH
    number = float(value)

    def one(x: float) -> str:
        divisor, suffix, spec = _scale(unit, x)
        return format(x / divisor, spec) + suffix

    if _missing(factor):
        return one(number)
    factor = float(factor)
    if factor <= 1.0 + 1e-9:
        return f"{one(number)} (±0)"
    return f"{one(number)} ({one(number / factor)}–{one(number * factor)})"


def unit_label(unit: str) -> str:
    """What a header adds for ``unit`` (``%`` for fractions; the rest carry their suffix)."""
    return "%" if unit == "fraction" else ""


AXIS_UNITS: dict[str, tuple[str, float]] = {
    "fraction": ("%", 100.0),
    "s": ("s", 1.0),
    "bytes": ("bytes", 1.0),
    "x": ("×", 1.0),
    "samples": ("samples", 1.0),
    "AUC": ("", 1.0),
}


def axis_unit(unit: str) -> tuple[str, float]:
    """A plot axis's unit text and the factor its values are drawn at (fractions
    as %, like the tables); an unknown unit is named as it is, unscaled."""
    return AXIS_UNITS.get(unit, (unit, 1.0))
