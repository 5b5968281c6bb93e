"""The lifecycle's subscribers, installed on import: what reacts, in the writer's
transaction, when a message becomes final or arrives (``pigeon.hooks``).

``pigeon.runtime`` and ``pigeon.cli`` import this module, so every process that writes
(serve, worker, the CLI's commands) has them; the tests' conftest does too. A new reaction
(consent, a CRM callback) is one more subscriber here, not an import in a domain.
"""

from __future__ import annotations

from pigeon import hooks
from pigeon.usecases import keywords
from pigeon.webhooks.service import callback_events, reply_event, report_events


def install() -> None:
    """Subscribe the reactions (once; a second call does nothing): webhooks and status
    callbacks, and the answer to a consent keyword."""
    hooks.install(__name__, finished=[report_events, callback_events], received=[reply_event, keywords.on_received],
                  sent=[callback_events])


install()
