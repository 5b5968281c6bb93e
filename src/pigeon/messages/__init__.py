"""Messages: every SMS in or out, whatever API it came through, and how it is read back."""
