"""Human units for sizes and durations: one formula, used by the inspection views and the front ends."""

from __future__ import annotations

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))
_NEXT = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_duration(seconds: float | None, coarse: bool = False, none: str = "never") -> str:
    """'1d12h', '5m', '42s'; coarse: the largest unit only, rounded ('2d'), for ranges of TTLs that
    drift by the second; `none` stands for no duration (no expiry)."""
    if seconds is None:
        return none
    for unit, size in _UNITS:
        if seconds >= size:
            if coarse:
                return f"{seconds / size:.0f}{unit}"
            whole = int(seconds // size)
            sub, sub_size = _NEXT[unit]
            part = int((seconds - whole * size) // sub_size)
            return f"{whole}{unit}{part}{sub}" if part else f"{whole}{unit}"
    return f"{seconds:.0f}s"
