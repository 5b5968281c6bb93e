"""Accounts: teams of users, their API tokens and their credits."""
