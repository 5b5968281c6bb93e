"""OAuth 2 for every bearer-token dialect: clients of an account with scopes, and the access
tokens they are granted (``models``, ``service``), and what a token's scopes allow (``scopes``,
pure). Each dialect speaks its own token endpoint over ``service``: Zoom's ``account_credentials``
grant today, Zoho's refresh tokens next."""
