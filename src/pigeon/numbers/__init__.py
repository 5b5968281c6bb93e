"""The phone numbers Pigeon owns: the senders and the inbound routes of every dialect.

``models``: a number, its owner (an account, and optionally a user of it), kind, capabilities,
source, status and carrier. ``service``: adding numbers one by one or from a file, finding
them, allocating them to accounts and users, and the two questions the core asks: which
number does this account send from, and whose is the number a message came to.
"""
