"""Request rates counted in the database, so that a limit holds for every process sharing it:
a fixed window per key (``service.hit``), one upsert a request."""
