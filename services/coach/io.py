"""The coach's Redis I/O: per-project state, versioned cache documents, change announcements.

Keys (``<ns>`` is the namespace, ``runbus`` by default; ``{<ns>:coach:<project>}`` is the
project's hash tag, `Names.coach_tag`):

- ``{<ns>:coach:<project>}:state`` — hash, field = fact key, value = ``[ts, event_id, value]``;
- ``{<ns>:coach:<project>}:meta`` — hash: ``rev`` (bumped by every merge that changed the
  state) and, per coach stage, ``<stage>:rev`` / ``:digest`` / ``:version`` of its document;
- ``{<ns>:coach:<project>}:doc:<stage>`` — the cached `CoachDocument` as JSON;
- ``<ns>:coach:projects`` — set of project ids the coach knows;
- channel ``<ns>:coach:changes`` — ``{"project_id", "stage", "version"}`` per change.

Two coach consumers may run in one group, so both writes are Lua scripts. The merge applies the
"higher (ts, event_id) wins" rule and returns the state with its revision in one atomic step.
The cache write refuses a result computed from an older revision than the one last written
(so a slow worker never overwrites a newer result), leaves an unchanged result alone (no version
bump, no rewrite, no announcement), and otherwise bumps the version, writes and publishes.

On a Redis Cluster every script touches one project's keys only, all under the project's tag:
one slot, so never CROSSSLOT, and no MULTI (which redis-py's asyncio cluster client breaks
during a failover). The project set spans every project, so it cannot share a slot with them:
it is a separate ``SADD`` after the merges. That is safe because the batch is acknowledged only
after the handler returns: a crash between merge and ``SADD`` redelivers the batch, and both
the merge and the ``SADD`` are idempotent.

Changes are announced with classic ``PUBLISH`` from inside the write script, not sharded
``SPUBLISH``: a cluster forwards a classic publish to every node, so one subscriber on any node
hears every project's changes on one channel. Sharded pub/sub would keep each message on its
slot's shard, but then the channel would have to carry the project's tag (one channel per
project), and a dashboard wanting every change would have to know every project and subscribe
on every shard. Announcements are small and rare (only real changes), so the cluster-wide
fan-out costs little.

A batch makes one merge call per project, then one write call per project (all its stages). One
node runs each kind in one pipeline (one round trip). A cluster cannot pipeline ``EVALSHA``, so
there they are concurrent calls, one per project (each to its slot's node).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import orjson
import redis.asyncio as aredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from services.coach import logic
from services.coach.facts import EARLIEST_KEYS, Fact, decode, encode
from shared.models import COACH_STAGES, CoachDocument, Suggestion
from shared.names import Names
from shared.wire import as_text

# KEYS: state hash, meta hash (one project: one slot).
# ARGV: project id, reset flag, then per fact: key, mode (L latest / E earliest), ts, id, json.
# Returns {rev, changed count, HGETALL state, missing stages...}.
_MERGE_TEMPLATE: Final = """
local function later(a_ts, a_id, b_ts, b_id)
  if a_ts ~= b_ts then return a_ts > b_ts end
  -- bytewise: Lua's string < follows the server's locale
  for i = 1, math.min(#a_id, #b_id) do
    local x, y = string.byte(a_id, i), string.byte(b_id, i)
    if x ~= y then return x > y end
  end
  return #a_id > #b_id
end
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
local changed = 0
for i = 3, #ARGV, 5 do
  local key, ts, id = ARGV[i], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local cur = redis.call('HGET', KEYS[1], key)
  local take = true
  if cur then
    local old = cjson.decode(cur)
    if ARGV[i + 1] == 'E' then take = later(old[1], old[2], ts, id)
    else take = later(ts, id, old[1], old[2]) end
  end
  if take then
    redis.call('HSET', KEYS[1], key, ARGV[i + 4])
    changed = changed + 1
  end
end
local rev
if changed > 0 or ARGV[2] == '1' then rev = redis.call('HINCRBY', KEYS[2], 'rev', 1)
else rev = tonumber(redis.call('HGET', KEYS[2], 'rev') or '0') end
local reply = {rev, changed, redis.call('HGETALL', KEYS[1])}
for _, stage in ipairs({__STAGES__}) do
  if not redis.call('HGET', KEYS[2], stage .. ':version') then reply[#reply + 1] = stage end
end
return reply
"""

# KEYS: meta hash, then the document key of each stage written (one project: one slot).
# ARGV: channel, then per stage: stage, rev, digest, document head, document tail, announcement
# head. Returns per stage: outcome (0 stale, 1 unchanged, 2 written), version; flattened.
_WRITE_LUA: Final = """#!lua flags=allow-oom
local meta = KEYS[1]
local function write(doc, stage, rev, digest, head, tail, announce)
  local rev_f, dig_f, ver_f = stage .. ':rev', stage .. ':digest', stage .. ':version'
  local version = tonumber(redis.call('HGET', meta, ver_f) or '0')
  if rev < tonumber(redis.call('HGET', meta, rev_f) or '-1') then return 0, version end
  redis.call('HSET', meta, rev_f, rev)
  local exists = redis.call('EXISTS', doc) == 1
  if exists and redis.call('HGET', meta, dig_f) == digest then return 1, version end
  if exists and version == 0 then
    -- the meta hash was lost: continue from the document's own version, never restart at 1
    version = tonumber(cjson.decode(redis.call('GET', doc))['version']) or 0
  end
  version = version + 1
  redis.call('SET', doc, head .. version .. tail)
  redis.call('HSET', meta, dig_f, digest, ver_f, version)
  redis.call('PUBLISH', ARGV[1], announce .. version .. '}')
  return 2, version
end
local reply = {}
for i = 2, #ARGV, 6 do
  local outcome, version = write(KEYS[#reply / 2 + 2], ARGV[i], tonumber(ARGV[i + 1]),
    ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
  reply[#reply + 1] = outcome
  reply[#reply + 1] = version
end
return reply
"""

Outcome = Literal["stale", "unchanged", "written"]
_OUTCOMES: Final[tuple[Outcome, ...]] = ("stale", "unchanged", "written")
# The coach's writes must go on when Redis is full (maxmemory, noeviction): they are what lets
# the valid stream be trimmed below the coach's floor, which frees the memory producers wait
# for. A script flagged allow-oom runs at OOM; an unflagged one is refused at its first write.
_ALLOW_OOM: Final = "#!lua flags=allow-oom\n"
_MERGE_LUA: Final = _ALLOW_OOM + _MERGE_TEMPLATE.replace(
    "__STAGES__", ", ".join(f"'{s}'" for s in COACH_STAGES)
)
# KEYS: the project set. ARGV: project ids.
_PROJECTS_LUA: Final = _ALLOW_OOM + "return redis.call('SADD', KEYS[1], unpack(ARGV))"
#: One script call: its keys and its arguments.
Call = tuple[list[str], list[str | bytes | int]]


@dataclass(frozen=True, slots=True)
class Merged:
    """A project's state right after a merge."""

    rev: int
    """State revision: rises with every merge that changed something."""
    changed: int
    """How many facts the merge stored."""
    state: dict[str, Fact]
    """Every fact of the project."""
    missing: frozenset[str]
    """Coach stages that have no cached document yet."""


@dataclass(frozen=True, slots=True)
class Written:
    """What a cache write did."""

    outcome: Outcome
    """stale (computed from an older state: dropped), unchanged, or written."""
    version: int
    """The document's version after the call."""


@dataclass(frozen=True, slots=True)
class StageResult:
    """Freshly computed suggestions of one (project, stage), to be written."""

    project_id: int
    """Project id."""
    stage: str
    """Coach stage."""
    rev: int
    """Revision of the state they were computed from."""
    suggestions: list[Suggestion]
    """The suggestions, most severe first."""
    source_id: str | None = None
    """Last valid-stream entry id that touched the project (None for a rebuild)."""


class CoachStore:
    """Coach state and cache of one namespace. Batched calls cost one round trip on one node."""

    def __init__(self, client: aredis.Redis, names: Names) -> None:
        self.client = client
        self.names = names
        self._merge = client.register_script(_MERGE_LUA)
        self._write = client.register_script(_WRITE_LUA)
        self._projects = client.register_script(_PROJECTS_LUA)
        self._cluster = isinstance(client, aredis.RedisCluster)

    async def merge(self, project_id: int, facts: Iterable[Fact], *, reset: bool = False) -> Merged:
        """Merge facts into one project's state (after dropping it, with `reset`)."""
        return (await self.merge_many({project_id: facts}, reset=reset))[project_id]

    async def merge_many(
        self, updates: Mapping[int, Iterable[Fact]], *, reset: bool = False
    ) -> dict[int, Merged]:
        """Merge facts into several projects' states, then add them to the project set."""
        if not updates:
            return {}
        calls = [self._merge_call(pid, facts, reset) for pid, facts in updates.items()]
        replies = await self._scripts(self._merge, calls, list(updates))
        return {pid: _merged(reply) for pid, reply in zip(updates, replies, strict=True)}

    def _merge_call(self, project_id: int, facts: Iterable[Fact], reset: bool) -> Call:
        args: list[str | bytes | int] = [project_id, "1" if reset else "0"]
        for fact in facts:
            mode = "E" if fact.key in EARLIEST_KEYS else "L"
            args += [fact.key, mode, fact.ts, fact.event_id, encode(fact)]
        return [self.names.coach_state(project_id), self.names.coach_meta(project_id)], args

    async def write(self, result: StageResult, *, taxonomy_version: str, now: datetime) -> Written:
        """Store one stage's suggestions unless unchanged or stale; announce a change."""
        return (await self.write_many([result], taxonomy_version=taxonomy_version, now=now))[0]

    async def write_many(
        self, results: Sequence[StageResult], *, taxonomy_version: str, now: datetime
    ) -> list[Written]:
        """Write several stage results: one script call per project (each stage in turn)."""
        if not results:
            return []
        template = DocumentTemplate(taxonomy_version, now)
        by_project: dict[int, list[int]] = {}
        for i, result in enumerate(results):
            by_project.setdefault(result.project_id, []).append(i)
        calls = [
            self._write_call(pid, [results[i] for i in indexes], template)
            for pid, indexes in by_project.items()
        ]
        replies = await self._scripts(self._write, calls)
        found: dict[int, Written] = {}
        for indexes, reply in zip(by_project.values(), replies, strict=True):
            for j, i in enumerate(indexes):
                found[i] = Written(_OUTCOMES[int(reply[2 * j])], int(reply[2 * j + 1]))
        return [found[i] for i in range(len(results))]

    async def _scripts(
        self, script: AsyncScript, calls: Sequence[Call], projects: Sequence[int] = ()
    ) -> list[Any]:
        """One script call each (one pipeline on a single node), then `projects` added to the
        project set (idempotent: a redelivered batch adds them again)."""
        if self._cluster:
            replies = list(await asyncio.gather(*(script(keys=k, args=a) for k, a in calls)))
        else:
            replies = await self._on_one_node(script, calls)
        if projects:
            await self._projects(keys=[self.names.coach_projects], args=list(projects))
        return replies

    async def _on_one_node(self, script: AsyncScript, calls: Sequence[Call]) -> list[Any]:
        replies = await self._pipelined(script, calls)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            # The server lost the script (a restart, a failover): load it, redo those calls
            script.sha = await self.client.script_load(script.script)
            redone = await self._pipelined(script, [calls[i] for i in missing])
            for i, reply in zip(missing, redone, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _pipelined(self, script: AsyncScript, calls: Sequence[Call]) -> list[Any]:
        """The calls as bare EVALSHAs in one pipeline, errors returned in place. redis-py's
        script pipeline would first ask ``SCRIPT EXISTS`` (a second round trip per batch)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    def _write_call(
        self, project_id: int, results: Sequence[StageResult], template: DocumentTemplate
    ) -> Call:
        keys = [self.names.coach_meta(project_id)]
        args: list[str | bytes | int] = [self.names.coach_changes]
        for result in results:
            stage, docs = result.stage, logic.dumped(result.suggestions)
            head, tail = template.parts(result, docs)
            announce = orjson.dumps({"project_id": project_id, "stage": stage})
            keys.append(self.names.coach_key(project_id, stage))
            args += [stage, result.rev, logic.digest_of(docs), head, tail]
            args.append(announce[:-1] + b',"version":')
        return keys, args


def _merged(reply: list[Any]) -> Merged:
    flat = reply[2]
    state: dict[str, Fact] = {}
    for i in range(0, len(flat), 2):
        key = as_text(flat[i])
        state[key] = decode(key, flat[i + 1])
    missing = frozenset(as_text(stage) for stage in reply[3:])
    return Merged(int(reply[0]), int(reply[1]), state, missing)


class DocumentTemplate:
    """A batch's `CoachDocument` JSON, split around its version (which the script fills in).

    The batch's documents share their time and taxonomy: the model is built and dumped once
    (for its fields, their order and their JSON forms), then each document swaps in its own
    project, stage, source and suggestions (already dumped for the digest).
    """

    def __init__(self, taxonomy_version: str, now: datetime) -> None:
        doc = CoachDocument(
            project_id=0,
            stage=COACH_STAGES[0],
            version=0,
            computed_at=now,
            source_id=None,
            taxonomy_version=taxonomy_version,
            suggestions=[],
        ).model_dump(mode="json")
        self.rest = {k: v for k, v in doc.items() if k not in ("project_id", "stage", "version")}

    def parts(self, result: StageResult, docs: list[dict[str, Any]]) -> tuple[bytes, bytes]:
        """Head and tail of `result`'s document, whose suggestions are `docs`."""
        head = orjson.dumps({"project_id": result.project_id, "stage": result.stage})
        rest = {**self.rest, "source_id": result.source_id, "suggestions": docs}
        return head[:-1] + b',"version":', b"," + orjson.dumps(rest)[1:]
