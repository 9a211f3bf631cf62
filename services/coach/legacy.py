"""The coach's keys of the old format, and moving them to today's (`runbus coach rebuild` does).

Before each project's coach keys shared the project's hash tag, the coach wrote
``<ns>:coach:<project>:<stage>`` (documents), ``<ns>:coachstate:<project>`` and
``<ns>:coachmeta:<project>``: one project's keys in several slots, which a Redis Cluster refuses
in one script. Those keys only ever existed on a single node. The project set
(``<ns>:coach:projects``) and the change channel kept their names, so the set still lists every
project the old coach knew.

`migrate` moves each project's old keys to their new names and deletes them: documents and meta
with ``DUMP``/``RESTORE`` (versions carry on; a new key already written wins), the state through
the coach's own merge (facts from both formats are unioned by the one merge rule, so nothing the
old coach knew is lost, even when the history has been pruned since). Running it twice, or with
the coach worker running, is harmless. The coach role of today's ACL file cannot read the old
names, so the upgrade's rebuild runs as ``admin``; for any other user the step is skipped.
"""

from __future__ import annotations

from typing import Any, cast

from redis.exceptions import NoPermissionError

from services.coach.facts import Fact, decode
from services.coach.io import CoachStore
from shared.logging import get_logger
from shared.models import COACH_STAGES
from shared.names import Names
from shared.wire import as_text

log = get_logger("runbus.coach")


def moves(names: Names, project_id: int) -> list[tuple[str, str]]:
    """(old key, new key) of a project's meta and documents."""
    ns = names.namespace
    pairs = [(f"{ns}:coachmeta:{project_id}", names.coach_meta(project_id))]
    for stage in COACH_STAGES:
        pairs.append((f"{ns}:coach:{project_id}:{stage}", names.coach_key(project_id, stage)))
    return pairs


def old_state(names: Names, project_id: int) -> str:
    """The old name of a project's state hash."""
    return f"{names.namespace}:coachstate:{project_id}"


async def migrate(store: CoachStore, project_id: int | None = None) -> int:
    """Move the old-format keys of `project_id` (or of every known project); keys moved."""
    client, names = store.client, store.names
    if project_id is not None:
        projects = [project_id]
    else:
        projects = sorted(int(m) for m in await client.smembers(names.coach_projects))
    moved = 0
    try:
        for pid in projects:
            moved += await _migrate_project(store, pid)
    except NoPermissionError:
        # today's ACL (the coach role) has no permission on the old names: the upgrade's
        # rebuild runs as a user that does (admin); every later rebuild has nothing to move
        log.warning("coach_legacy_keys_not_readable", moved=moved)
    return moved


async def _migrate_project(store: CoachStore, project_id: int) -> int:
    client, names = store.client, store.names
    pairs = moves(names, project_id)
    state_key = old_state(names, project_id)
    async with client.pipeline(transaction=False) as pipe:
        for old, _ in pairs:
            pipe.dump(old)
        pipe.hgetall(state_key)
        *dumps, flat = await pipe.execute()
    found = [(new, payload) for (_, new), payload in zip(pairs, dumps, strict=True) if payload]
    if found:
        async with client.pipeline(transaction=False) as pipe:
            for new, payload in found:
                pipe.restore(new, 0, payload)
            await pipe.execute(raise_on_error=False)  # BUSYKEY: the new key was written since
    facts = _facts(cast(dict[Any, Any], flat))
    if facts:
        await store.merge(project_id, facts)
    gone = [old for (old, _), payload in zip(pairs, dumps, strict=True) if payload]
    gone += [state_key] if flat else []
    for key in gone:  # one key per command: the old keys are in different slots
        await client.delete(key)
    return len(gone)


def _facts(flat: dict[Any, Any]) -> list[Fact]:
    return [decode(as_text(key), raw) for key, raw in flat.items()]
