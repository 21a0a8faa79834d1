"""Parse human-friendly durations such as "1h30m" or "45s" into seconds."""

UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text):
    """Return the number of seconds in ``text``.

    ``text`` is a sequence of <number><unit> parts, units being d, h, m and s:
    "2h", "1h30m", "1d2h3m4s". Raises ValueError on anything else.
    """
    text = text.strip().lower()
    if not text:
        raise ValueError("empty duration")
    total = 0
    number = ""
    for ch in text:
        if ch.isdigit():
            number += ch
        elif ch in UNITS:
            if not number:
                raise ValueError(f"unit {ch!r} without a number in {text!r}")
            total = int(number) * UNITS[ch]
            number = ""
        else:
            raise ValueError(f"unexpected character {ch!r} in {text!r}")
    if number:
        raise ValueError(f"number without a unit at the end of {text!r}")
    return total


def format_duration(seconds):
    """The inverse of parse_duration: 5400 -> "1h30m"."""
    if seconds < 0:
        raise ValueError("negative duration")
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
