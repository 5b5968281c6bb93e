"""MMS media: files stored in the database, so that every Pigeon process can read them, and
linked to the messages that carry them."""
