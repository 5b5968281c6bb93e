"""The ``pigeon`` command's entry: the metrics' shared directory first, then the command line.

prometheus-client chooses between counting in memory and counting into a shared directory
when it is first imported, so the directory is made (``PROMETHEUS_MULTIPROC_DIR``) before
anything of Pigeon is: every process the command starts (API workers, the delivery process)
inherits it, and ``/metrics`` sums them (``pigeon.metrics``). A directory given in the
environment is used as it is. One made here is removed when the command ends; one left by a
process that was killed is removed by the next command.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "pigeon-metrics-"


def prepare() -> None:
    """Make this command's metrics directory, unless the environment names one."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    _sweep(Path(tempfile.gettempdir()))
    path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(path, ignore_errors=True))


def _sweep(directory: Path) -> None:
    """Remove the directories of commands that are gone (killed: no exit handler ran)."""
    for path in directory.glob(f"{PREFIX}*-*"):
        pid = path.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> None:
    prepare()
    from pigeon.cli import main as cli

    cli()
