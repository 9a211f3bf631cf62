"""The web dashboard, served by the API process under ``/ui``.

Server-rendered pages (Jinja2, `render`) with htmx for partial updates and server-sent events
for the live parts; every asset is served by the app itself and pinned by hash (`assets`), so a
page works on a machine without internet and there is no front-end build. Pages read through
the same library calls as the JSON API. The dashboard is read-only unless an API token is
configured and the operator signed in with it (`access`).
"""
