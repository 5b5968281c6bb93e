"""Pigeon: a self-hosted SMS platform speaking the Zoom Connect, Zoho Voice and Zoom Number
Management APIs over one core of accounts, messages and a durable delivery queue."""

__version__ = "0.1.0"
