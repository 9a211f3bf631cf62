"""The coach: per-project, per-stage "what to do next" suggestions, recomputed into a cache.

`logic` and `generators` are pure; `io` holds the Redis state and cache (Lua); `handler` is the
batch handler of the live worker; `rebuild` recomputes from the history; `reads` is what the CLI
and the HTTP API read; `app` hosts the worker as a FastStream app.
"""
