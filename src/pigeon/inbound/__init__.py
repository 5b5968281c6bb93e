"""Inbound: messages from phones, given to the user they answer."""
