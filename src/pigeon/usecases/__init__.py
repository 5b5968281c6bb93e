"""Use cases: what a person does that spans several domains (sending a template to a group
spans contacts, templates and sending). Plain functions over a session, called by every edge
(the HTTP dialects in ``pigeon.api``, the command line in ``pigeon.cli``) alike.

The layers, each importing only those below it::

    pigeon.api, pigeon.cli        edges: the wire format, finding things by the edge's names
    pigeon.usecases               this package
    pigeon.contacts, .templates,  domains: plain functions over a session
    pigeon.sending, ...

Nothing here imports an edge; a refusal is the domains' own exception, which each edge words
in its own dialect.
"""
