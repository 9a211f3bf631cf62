"""Suggestion generators, one module per coach stage: ``facts(seen)`` and ``suggest(state)``.

Each module documents the events and payload keys it reads. Both functions are pure: a
generator only reads the state it is given and never writes project state.
"""
