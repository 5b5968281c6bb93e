"""Consent: who may be texted. STOP, START and HELP, whichever API the messages go through.

``keywords``: what an inbound text asks for (pure). ``models``: opt-outs, each for a scope (the
number texted, or the account when the message came to no number of Pigeon's), and every
keyword event. ``service``: acting on a keyword, and which of a batch's recipients have opted
out. Sending consults ``service.opted_out``; the reply to a keyword is a use case
(``pigeon.usecases.keywords``), subscribed to inbound messages by ``pigeon.wiring``.
"""
