"""Contacts and groups: a user's address book, and the lists it sends to."""
