"""Sending: validate, price and accept outbound messages; accepting charges and enqueues at once."""
