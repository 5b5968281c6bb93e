"""How credits are counted."""

MILLI = 1000
"""Credits are stored as integer thousandths: exact sums, atomic updates, no float drift."""
