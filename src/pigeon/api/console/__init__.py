"""The web console at ``/console``: what an operator and an account's users do every day, in
the browser, over the same services and permissions as the APIs. Server-rendered (Jinja2
templates), with htmx for the live parts and uPlot for the charts, every asset served by
Pigeon (``/static``). ``web``: the visitor, CSRF, templates and security headers every page
shares; ``signin``: signing in and out, the visitor's password and API token; one module per
screen (``messages``...); ``app``: the sub-application.
"""

from pigeon.api.console.app import create
from pigeon.api.console.web import PREFIX

__all__ = ["PREFIX", "create"]
