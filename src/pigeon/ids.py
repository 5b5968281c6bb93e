"""Identifiers for messages: 24 hex digits, time-ordered, unguessable enough.

Four bytes of Unix seconds, then eight random bytes: ids sort by creation second, and the
random tail makes them collision-free across processes without coordination.
"""

from __future__ import annotations

import os
import time


def new_id() -> str:
    return int(time.time()).to_bytes(4, "big").hex() + os.urandom(8).hex()
