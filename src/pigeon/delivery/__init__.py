"""Delivery: the durable outbound queue, the engine that drains it, and receipts coming back."""
