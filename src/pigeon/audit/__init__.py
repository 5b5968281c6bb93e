"""Who changed what: one row per change made through the console or the command line."""
