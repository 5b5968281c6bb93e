"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) as text: the functions with the
most own time (leaf frames) and the most total time (anywhere on the stack).

    python bench/pyspy_summary.py profile.txt [--top 25] [--thread-split]

Frames are grouped by function and file, lines ignored. Percentages are of all samples in the
file (py-spy records only threads that were running, not idle ones, unless --idle was used).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def _key(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/src/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def summarise(path: str, top: int = 25, thread: str | None = None) -> dict:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    samples = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count_s = line.rpartition(" ")
            try:
                count = int(count_s)
            except ValueError:
                continue
            frames = stack.split(";")
            if frames and (frames[0].startswith("thread (") or frames[0].startswith("process ")):
                if thread and not any(thread in fr for fr in frames[:2]):
                    continue
                threads[frames[0]] += count
                frames = [fr for fr in frames if not fr.startswith(("thread (", "process "))]
            if not frames:
                continue
            samples += count
            keys = [_key(fr) for fr in frames]
            own[keys[-1]] += count
            for k in set(keys):
                total[k] += count
    pct = (lambda n: round(100.0 * n / samples, 1)) if samples else (lambda n: 0.0)
    return {
        "samples": samples,
        "threads": [(t, pct(n)) for t, n in threads.most_common()],
        "own": [(k, pct(n)) for k, n in own.most_common(top)],
        "total": [(k, pct(n)) for k, n in total.most_common(top)],
    }


def render(summary: dict, title: str = "") -> str:
    lines = []
    if title:
        lines.append(f"== {title}: {summary['samples']} samples")
    if summary["threads"]:
        lines.append("  threads: " + ", ".join(f"{t} {p}%" for t, p in summary["threads"]))
    lines.append("  own time (leaf frames):")
    lines += [f"    {p:5.1f}%  {k}" for k, p in summary["own"]]
    lines.append("  total time (on the stack):")
    lines += [f"    {p:5.1f}%  {k}" for k, p in summary["total"]]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--thread", help="only threads whose name contains this, e.g. MainThread or pigeon-db")
    a = ap.parse_args()
    print(render(summarise(a.path, a.top, a.thread), a.path + (f" [{a.thread}]" if a.thread else "")))
