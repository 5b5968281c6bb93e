"""``pigeon smsc``: a standalone SMPP 3.4 server simulating a carrier's SMSC.

``Smsc`` (in ``pigeon.smsc.server``) runs it in-process; ``pigeon smsc`` from the command line.
"""

from .settings import ConfigError, SmscSettings, load_settings

__all__ = ["ConfigError", "Smsc", "SmscSettings", "load_settings"]


def __getattr__(name: str) -> object:  # import the server (and asyncio) only when used
    if name == "Smsc":
        from .server import Smsc

        return Smsc
    raise AttributeError(name)
