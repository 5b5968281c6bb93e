"""CPU and memory figures read from /proc (Linux only), shared by run.py and loadgen.py.

A ``CpuSnapshot`` taken before and after a measurement window says how many cores the server
process, the PostgreSQL processes and the whole machine used during it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


def process_ticks(pid: int) -> int:
    """utime + stime of one process (all its threads), in clock ticks; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of the man page


def tree(pid: int) -> list[int]:
    """A process and all its descendants (a server with worker processes)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_ticks(pid: int) -> int:
    return sum(process_ticks(p) for p in tree(pid))


def thread_groups(pid: int) -> dict[str, int]:
    """Ticks of a server's threads, by kind: its event loop (each process's main thread), libuv's
    own workers, and the Python threads, which are the pigeon-db executor's and AnyIO's (Python
    3.11 does not give the OS its thread names, so these two cannot be told apart here)."""
    out = {"loop": 0, "threads": 0, "libuv": 0}
    for proc in tree(pid):
        try:
            tids = os.listdir(f"/proc/{proc}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{proc}/task/{tid}/comm", "rb") as f:
                    comm = f.read().strip()
                with open(f"/proc/{proc}/task/{tid}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(b")") + 2 :].split()
            ticks = int(fields[11]) + int(fields[12])
            kind = "loop" if int(tid) == proc else "libuv" if comm.startswith(b"libuv") else "threads"
            out[kind] += ticks
    return out


def postgres_processes() -> Iterator[tuple[int, bytes]]:
    """(pid, command line with spaces for NULs and one at the end) of every process named postgres."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/comm", "rb") as f:
                if f.read().strip() != b"postgres":
                    continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ") + b" "
        except OSError:
            continue
        yield int(name), cmdline


def postgres_ticks() -> dict[int, int]:
    """utime + stime of every process named postgres, by pid."""
    return {pid: process_ticks(pid) for pid, _ in postgres_processes()}


def machine_ticks() -> tuple[int, int]:
    """(busy, steal) ticks over all cores, from the first line of /proc/stat.

    Busy is user + nice + system + irq + softirq: time this machine's processes ran. Steal is
    time a virtual CPU wanted to run but the hypervisor ran something else.
    """
    with open("/proc/stat", "rb") as f:
        v = [int(x) for x in f.readline().split()[1:]] + [0] * 10
    return v[0] + v[1] + v[2] + v[5] + v[6], v[7]


def memory(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) and VmRSS of a process, in MiB; with worker processes, also
    the sum of their peaks (an upper bound of the tree's peak)."""
    def one(p: int) -> dict[str, float]:
        out = {}
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(("VmHWM:", "VmRSS:")):
                        key, value = line.split(":", 1)
                        out[key] = int(value.split()[0]) / 1024  # kB -> MiB
        except OSError:
            pass
        return out

    out = one(pid)
    others = [one(p) for p in tree(pid)[1:]]
    if others:
        out["VmHWM_tree_sum"] = out.get("VmHWM", 0) + sum(o.get("VmHWM", 0) for o in others)
        out["processes"] = 1 + len(others)
    return out


def background_cores(seconds: float = 1.0) -> dict[str, float]:
    """Cores busy (and stolen) over the next ``seconds``, before a phase starts: other work."""
    b0, s0 = machine_ticks()
    time.sleep(seconds)
    b1, s1 = machine_ticks()
    return {"busy_cores": round((b1 - b0) / TICK / seconds, 2), "steal_cores": round((s1 - s0) / TICK / seconds, 2)}


@dataclass
class CpuSnapshot:
    at: float
    server: int
    postgres: dict[int, int]
    machine: int
    steal: int
    threads: dict[str, int]

    @classmethod
    def take(cls, server_pid: int | None, with_postgres: bool = True) -> CpuSnapshot:
        return cls(
            time.monotonic(),
            tree_ticks(server_pid) if server_pid else 0,
            postgres_ticks() if with_postgres else {},
            *machine_ticks(),
            thread_groups(server_pid) if server_pid else {},
        )

    def cores_since(self, start: CpuSnapshot) -> dict[str, float]:
        """Cores used (CPU seconds per wall second) between ``start`` and this snapshot."""
        wall = max(self.at - start.at, 1e-9)
        pg = sum(t - start.postgres.get(pid, 0) for pid, t in self.postgres.items())
        return {
            "server_cores": round((self.server - start.server) / TICK / wall, 3),
            "postgres_cores": round(pg / TICK / wall, 3),
            "machine_cores": round((self.machine - start.machine) / TICK / wall, 3),
            "steal_cores": round((self.steal - start.steal) / TICK / wall, 3),
            "wall_s": round(wall, 3),
            "server_threads_cores": {k: round((v - start.threads.get(k, 0)) / TICK / wall, 3)
                                     for k, v in self.threads.items()},
        }
