"""One search box: an event id, a run id, a stream entry id or a project id, found anywhere.

`search` tries every reading of the text at once and lists typed hits, each with its kind and
ids (the page maps a hit to its link):

- ``event``: a stored event whose event id is the text (the unique key ``(event_id, ts)``),
  or, for an entry id, whose event id the validator derived from it (``evt-<id>``, with several
  partitions ``evt-<p>:<id>``: `shared.wire.derived_event_id`);
- ``run``: a run with stored events (first entry of ``history_run``);
- ``project``: a project the coach knows (one SISMEMBER) or the history has
  (``history_project``, one entry);
- ``dead_letter``: a dead letter with that id (qualified ``<p>:<id>``; plain: every partition),
  or whose source entry had that id (``matched: source_id``: a rejected entry, found by the id
  its producer's XADD returned, after the entry itself is gone);
- ``stream_entry``: an entry still on an incoming or valid stream (an XRANGE of the one id on
  each partition's stream).

Every lookup is an indexed point read or an XRANGE of one id, but the dead letters of a source
id, a bounded scan (`services.ops.lookup.find_dead_letters_of`: at most ``SOURCE_PAGE *
SOURCE_PAGES`` dead letters per partition, from that id's millisecond on): the cost does not
grow with the history or the streams. On purpose, a stored event is not found by its incoming
entry id when
the producer gave it an event id (no index on ``source_id``: the insert path pays for every
index); nor is a redriven event by its new entry id (its derived id keeps its first one).
Lives in the API layer: it reads the history and the bus, which are one layer and never
import each other.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal

import orjson
import redis.asyncio as aredis
from pydantic import BaseModel, Field, ValidationError

from services.coach.reads import is_known_project
from services.history.base import HistoryStore
from services.ops.errors import InvalidStreamId
from services.ops.logic import hint_of_fields
from services.ops.lookup import Found, find_dead_letters_of, find_entry
from services.ops.stream_ids import DeadLetterId, parse_dead_letter_id, qualified
from shared.errors import InputError
from shared.models import EVENT_ID_PATTERN
from shared.names import Names, StreamKind
from shared.wire import (
    DATA_FIELD,
    derived_event_id,
    entry_time,
    hint_of,
    parse_envelope,
    unwrap_body,
)

#: The longest text searched: the longest run id (`shared.models.RunId`); every id is shorter.
MAX_QUERY: Final = 256
#: Stored events listed at most (one event id may be stored at several event times).
MAX_EVENTS: Final = 20
_EVENT_ID: Final = re.compile(EVENT_ID_PATTERN)
#: A project id as the stores hold it: canonical decimal, signed 64-bit ([0-9], not \d).
_PROJECT_ID: Final = re.compile(r"(?:0|[1-9][0-9]{0,18})")
_MAX_PROJECT_ID: Final = 2**63 - 1

#: The streams an entry id is looked for on: dead letters first, then entries on their way.
_ENTRY_KINDS: Final = (StreamKind.DEAD, StreamKind.EVENTS, StreamKind.VALID)

HitKind = Literal["event", "run", "project", "dead_letter", "stream_entry"]
Matched = Literal["event_id", "derived_event_id", "run_id", "project_id", "entry_id", "source_id"]


class InvalidSearch(InputError):
    """A search text no id can be: empty, longer than `MAX_QUERY`, or not Unicode text."""

    code = "invalid_search"


class SearchHit(BaseModel):
    """One thing the text names: its kind and its ids (what a page needs to link to it)."""

    kind: HitKind = Field(description="What was found.")
    matched: Matched = Field(description="What the text was taken as.")
    event_id: str | None = Field(None, description="The event's id (event, valid entry).")
    run_id: str | None = Field(None, description="The run (event, run, entries when known).")
    project_id: int | None = Field(None, description="The project, when known.")
    entry_id: str | None = Field(
        None,
        description="The entry's id: qualified <partition>:<id> with several partitions "
        "(dead letter, stream entry).",
    )
    stream: StreamKind | None = Field(
        None, description="Stream role the entry is on (dead, events, valid)."
    )
    partition: int | None = Field(None, description="Partition of the entry.")
    ts: datetime | None = Field(
        None, description="Event time (event), first event time (run), entry time (entries)."
    )


class SearchResult(BaseModel):
    """Every hit of one search text, events first, then runs, projects, dead letters, entries."""

    q: str = Field(description="The text searched.")
    hits: list[SearchHit] = Field(description="What it names; empty when nothing.")


def check_query(q: str) -> str:
    """`q` when it can be searched; `InvalidSearch` if not."""
    if not 1 <= len(q) <= MAX_QUERY:
        raise InvalidSearch(f"q: 1 to {MAX_QUERY} characters, not {len(q)}", field="q")
    try:
        q.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: no store can hold or compare it
        raise InvalidSearch("q: not Unicode text (a lone surrogate)", field="q") from exc
    return q


def _entry_id(text: str) -> DeadLetterId | None:
    try:
        return parse_dead_letter_id(text, "q")
    except InvalidStreamId:
        return None


def _project_id(value: str | None) -> int | None:
    if value is None or not _PROJECT_ID.fullmatch(value) or int(value) > _MAX_PROJECT_ID:
        return None
    return int(value)


async def _events(
    store: HistoryStore, names: Names, text: str, entry: DeadLetterId | None
) -> list[SearchHit]:
    """Stored events whose id is the text, or derived from it as an incoming entry id."""
    derived = []
    if entry is not None:
        single = names.partitions == 1
        derived = [
            derived_event_id(entry.entry, None if single else p)
            for p in entry.partitions(names.partitions)
        ]
    ids = ([text] if _EVENT_ID.fullmatch(text) else []) + derived
    rows = await store.events_by_id(ids, MAX_EVENTS) if ids else []
    return [
        SearchHit(
            kind="event",
            matched="event_id" if row.event_id == text else "derived_event_id",
            event_id=row.event_id,
            run_id=row.run_id,
            project_id=row.project_id,
            ts=row.ts,
        )
        for row in rows
    ]


async def _runs(store: HistoryStore, candidates: list[str]) -> list[SearchHit]:
    spans = await store.run_spans(candidates)
    return [
        SearchHit(kind="run", matched="run_id", run_id=span.run_id, ts=span.first_ts)
        for span in spans
    ]


async def _projects(
    redis: aredis.Redis, names: Names, store: HistoryStore, text: str
) -> list[SearchHit]:
    project = _project_id(text)
    if project is None:
        return []
    known = await is_known_project(redis, names, project)
    if not known:
        known = bool((await store.project_timeline(project, limit=1)).rows)
    return [SearchHit(kind="project", matched="project_id", project_id=project)] if known else []


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _ids_of(found: Found) -> dict[str, str | None]:
    """The event, run and project ids an entry's fields tell (best effort, never fails)."""
    if found.kind is StreamKind.DEAD:
        return dict(hint_of_fields(found.fields))
    data = found.fields.get(DATA_FIELD)
    if data is None:
        return {}
    if found.kind is StreamKind.VALID:
        try:
            envelope = parse_envelope(data)
        except (ValidationError, ValueError):
            return {}
        event = envelope.event
        return {
            "event_id": envelope.event_id,
            "run_id": _text(event.get("run_id")),
            "project_id": _text(event.get("project_id")),
        }
    body = unwrap_body(data)
    return {**hint_of(body), "event_id": _given_event_id(body)} if body else {}


def _given_event_id(body: bytes) -> str | None:
    """The event id a producer put in an incoming body, when it is one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    given = doc.get("event_id") if isinstance(doc, dict) else None
    return given if isinstance(given, str) and _EVENT_ID.fullmatch(given) else None


def _entry_hit(names: Names, found: Found, matched: Matched = "entry_id") -> SearchHit:
    """A hit of an entry on a stream (a dead letter, or one still on its way)."""
    ids = _ids_of(found)
    return SearchHit(
        kind="dead_letter" if found.kind is StreamKind.DEAD else "stream_entry",
        matched=matched,
        event_id=ids.get("event_id"),
        run_id=ids.get("run_id"),
        project_id=_project_id(ids.get("project_id")),
        entry_id=qualified(found.partition, found.entry_id, names.partitions),
        stream=found.kind,
        partition=found.partition,
        ts=_entry_ts(found.entry_id),
    )


def _entry_ts(entry_id: str) -> datetime | None:
    """The time in an entry id; None past what a datetime holds (an id set by hand)."""
    try:
        return entry_time(entry_id)
    except (OverflowError, ValueError, OSError):
        return None


async def search(redis: aredis.Redis, names: Names, store: HistoryStore, q: str) -> SearchResult:
    """Every hit of `q` (see the module): ``GET /api/search?q=``, and the dashboard's box.

    Surrounding blanks are ignored for ids (a pasted id); a run id is looked up as given too.
    `InvalidSearch` for a text that no id can be.
    """
    q = check_query(q)
    text = q.strip()
    entry = _entry_id(text)
    runs = [r for r in dict.fromkeys((q, text)) if r]
    hits = await _events(store, names, text, entry)
    hits += await _runs(store, runs)
    hits += await _projects(redis, names, store, text)
    if entry is not None:
        hits += await _entries(redis, names, text)
    return SearchResult(q=q, hits=hits)


async def _entries(redis: aredis.Redis, names: Names, text: str) -> list[SearchHit]:
    """Dead letters by their id, then by their source entry's id, then entries on their way."""
    found = await find_entry(redis, names, text, _ENTRY_KINDS)
    dead = [one for one in found if one.kind is StreamKind.DEAD]
    seen = {(one.partition, one.entry_id) for one in dead}
    sourced = [
        one
        for one in await find_dead_letters_of(redis, names, text)
        if (one.partition, one.entry_id) not in seen
    ]
    return [
        *(_entry_hit(names, one) for one in dead),
        *(_entry_hit(names, one, "source_id") for one in sourced),
        *(_entry_hit(names, one) for one in found if one.kind is not StreamKind.DEAD),
    ]
