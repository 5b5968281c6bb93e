"""What an inbound text asks for, if it is a keyword. Pure.

The standard keywords always work (CTIA practice; FCC order 24-18): opt-out STOP, STOPALL,
UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT, "OPT OUT"; opt-in START, YES, UNSTOP; help
HELP, INFO. A text is a keyword when, trimmed, its words joined by single spaces, in any case,
it is one of them: "stop", " Stop ", "opt  out"; not "please stop texting me".
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})

TEXTS = {
    Action.OPT_OUT: "You are unsubscribed and will get no more messages from this number. Reply START to "
                    "subscribe again.",
    Action.OPT_IN: "You are subscribed again. Reply STOP to unsubscribe, HELP for help.",
    Action.HELP: "Reply STOP to unsubscribe, START to subscribe again.",
}
"""The answer to each keyword where no policy gives its own."""


def keyword(text: str | None) -> str | None:
    """The keyword a text is, in its standard spelling; None when it is not one."""
    if not text or len(text) > 40:
        return None
    word = " ".join(text.split()).upper()
    return word if word in OPT_OUT or word in OPT_IN or word in HELP else None


def action(word: str) -> Action:
    """What a keyword (from ``keyword``) does."""
    if word in OPT_OUT:
        return Action.OPT_OUT
    return Action.OPT_IN if word in OPT_IN else Action.HELP
