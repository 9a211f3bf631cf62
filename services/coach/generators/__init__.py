"""Suggestion generators, one module per coach stage: ``facts(seen)`` and ``suggest(state)``.

Each module documents the events and payload keys it reads, and names the BrewSLM stages whose
events its ``facts`` reads in ``EVENT_STAGES`` (None: every stage some module names); it is
called for those only. Both functions are pure: a generator only reads the state it is given
and never writes project state.
"""
