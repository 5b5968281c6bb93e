"""Incidents: what the platform set aside or could not be sure of, kept for the operator."""
