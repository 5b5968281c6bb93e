"""Message templates with placeholders filled from a contact."""
