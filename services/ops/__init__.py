"""Operator tools over the bus: dead letters (tail, stats, show, redrive, purge) and status.

A library first: the `runbus dlq ...` / `runbus status` commands and the HTTP API
(`GET /api/dead-letters`, `GET /api/status`) share it. Functions return pydantic models, so the
API serializes exactly what the CLI prints with ``--json``.

- `durations`: the one parser of human durations (``30s``, ``15m``, ``2h``, ``7d``).
- `models`: what the functions return.
- `logic`: pure parts (reason filters, record conversion, redrive fields, token bucket).
- `filters`: a filter as typed (reasons, stages, sources, age) and the one matcher of
  listings, live tails, redrives and purges.
- `lookup`: point lookups of one entry id on the bus's streams (what search asks).
- `deadletters`: Redis I/O on the dead-letter stream and the audit stream.
- `status`: Redis I/O describing streams, groups and consumers.
- `render`: rich rendering for the command line.
"""
