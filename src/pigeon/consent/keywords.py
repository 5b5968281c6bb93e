"""What an inbound text asks for, if it is a keyword. Pure.

The standard keywords always work (CTIA practice; FCC order 24-18): opt-out STOP, STOPALL,
UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT, "OPT OUT"; opt-in START, YES, UNSTOP; help
HELP, INFO. A consent policy adds its own to each list and may not remove one. A text is a
keyword when, trimmed, its words joined by single spaces, in any case, it is one of them:
"stop", " Stop ", "opt  out"; not "please stop texting me".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
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


def spelled(word: str) -> str:
    """A keyword as it is compared: words joined by single spaces, upper case."""
    return " ".join(word.split()).upper()


@dataclass(frozen=True, slots=True)
class Words:
    """The keywords that act, and the answer to each action."""

    opt_out: frozenset[str] = OPT_OUT
    opt_in: frozenset[str] = OPT_IN
    help: frozenset[str] = HELP
    texts: dict[Action, str] = field(default_factory=lambda: dict(TEXTS))

    def classify(self, text: str | None) -> tuple[str, Action] | None:
        """(the keyword, what it does) if ``text`` is one; None otherwise. Opting out wins
        where a policy's lists overlap."""
        if not text or len(text) > 64:
            return None
        word = spelled(text)
        for words, action in ((self.opt_out, Action.OPT_OUT), (self.opt_in, Action.OPT_IN), (self.help, Action.HELP)):
            if word in words:
                return word, action
        return None


STANDARD = Words()


def with_policy(opt_out: Iterable[str] = (), opt_in: Iterable[str] = (), help_: Iterable[str] = (),
                texts: dict[Action, str] | None = None) -> Words:
    """The standard keywords with a policy's own added, and its texts where it gives them."""
    own = {action: text for action, text in (texts or {}).items() if text and text.strip()}
    return Words(OPT_OUT | {spelled(w) for w in opt_out if w.strip()}, OPT_IN | {spelled(w) for w in opt_in if w.strip()},
                 HELP | {spelled(w) for w in help_ if w.strip()}, {**TEXTS, **own})


def keyword(text: str | None) -> str | None:
    """The standard keyword a text is; None when it is none."""
    found = STANDARD.classify(text)
    return found[0] if found else None
