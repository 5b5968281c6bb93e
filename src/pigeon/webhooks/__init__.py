"""Webhooks: replies and delivery reports pushed to users' servers, signed, never lost."""
