"""Dead letters that retention archived (`shared.archive`): found by id or by filter, redriven.

A dead letter past the retention policy leaves its stream only once it is in the archive
(`services.persister.retention`), so a lookup that misses the stream asks the archive. The
archived entry is the stream entry, whole: it becomes the same `DeadLetterRecord` (with
`archived_at` set) and is redriven with the same fields as from the stream. A redrive by filter
that asks for the archive too (`DeadLetterFilter.archived`) scans it a page at a time in the
filter's age window and applies the stream's own `Matcher` to each letter's fields, so it
selects what the same filter would have selected on the stream.

A redrive from the archive claims each letter first (an insert that succeeds once per letter),
then appends it to its target; a letter whose append failed is released, so a later redrive
sends it. Two redrives at once, or one run twice, send each archived letter once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis.asyncio as aredis
from redis.exceptions import RedisError

from services.ops.logic import record_of, redrive_fields
from services.ops.models import DeadLetterRecord
from services.ops.partitions import Located, shown_id
from shared.archive import FIRST_ID, LAST_ID, ArchivedLetter, DeadLetterArchive, IdKey
from shared.names import Names
from shared.wire import Fields, as_text, entry_id_key


def archived_record(names: Names, partition: int, letter: ArchivedLetter) -> DeadLetterRecord:
    """The record of an archived letter: as on the stream, with when it was archived."""
    record = record_of(shown_id(names, partition, letter.entry_id), letter.fields)
    update = {"archived_at": letter.archived_at, "archive_redriven": letter.redriven}
    return record.model_copy(update=update)


async def find_archived(
    archive: DeadLetterArchive, names: Names, pairs: Sequence[tuple[int, str]]
) -> list[tuple[int, ArchivedLetter]]:
    """The archived letters at these (partition, entry id), in the order given, with their
    partition."""
    keys = [(names.partition(index).dead, entry_id) for index, entry_id in pairs]
    index_of = {names.partition(index).dead: index for index, _ in pairs}
    found = await archive.archived_dead_letters(keys)
    return [(index_of[letter.stream], letter) for letter in found]


#: Archived letters read per query of a scan.
PAGE = 1000


def archive_bounds(low: str, high: str) -> tuple[IdKey, IdKey]:
    """An XRANGE window (``-`` or an inclusive ``ms-seq``; ``+`` or an exclusive ``(ms-0``, as
    `services.ops.logic.window` gives them) as the archive's (after, until]."""
    after = FIRST_ID
    if low != "-":
        ms, seq = entry_id_key(low)
        after = (ms, seq - 1)
    until = LAST_ID
    if high != "+":
        ms, seq = entry_id_key(high.removeprefix("("))
        until = (ms, seq - 1) if seq > 0 else (ms - 1, LAST_ID[1])
    return after, until


async def matching_archived(
    archive: DeadLetterArchive,
    names: Names,
    bounds: tuple[str, str],
    match: Callable[[Fields], bool],
    on_stream: set[tuple[int, str]],
) -> list[Located]:
    """Archived letters in the XRANGE window `bounds` that `match`, not yet sent back from the
    archive and not in `on_stream` (a letter archived, then not yet trimmed), partition by
    partition, oldest first."""
    after, until = archive_bounds(*bounds)
    out: list[Located] = []
    for partition in names.all_partitions:
        position = after
        while True:
            page = await archive.archived_after(partition.dead, position, until, PAGE)
            out += [
                (partition.index, letter.entry_id, letter.fields)
                for letter in page
                if not letter.redriven
                and (partition.index, letter.entry_id) not in on_stream
                and match(letter.fields)
            ]
            if len(page) < PAGE:
                break
            position = entry_id_key(page[-1].entry_id)
    return out


def located(found: Sequence[tuple[int, ArchivedLetter]]) -> list[Located]:
    """Archived letters as the (partition, id, fields) the stream's readers use."""
    return [(index, letter.entry_id, letter.fields) for index, letter in found]


async def redrive_archived(
    client: aredis.Redis,
    archive: DeadLetterArchive,
    names: Names,
    index: int,
    moves: tuple[Sequence[str], str],
) -> dict[str, str]:
    """Send these archived letters of partition `index` to `target` (``moves``: entry ids,
    target), each at most once; entry id -> new id of those sent now."""
    entry_ids, target = moves
    dead = names.partition(index).dead
    letters = [
        letter
        for letter in await archive.archived_dead_letters([(dead, i) for i in entry_ids])
        if not letter.redriven
    ]
    claimed = await archive.claim_redrives([(dead, letter.entry_id) for letter in letters])
    mine = [letter for letter in letters if (dead, letter.entry_id) in claimed]
    if not mine:
        return {}
    try:
        async with client.pipeline(transaction=False) as pipe:
            for letter in mine:
                fields = redrive_fields(shown_id(names, index, letter.entry_id), letter.fields)
                pipe.xadd(target, fields)  # type: ignore[arg-type]
            replies = await pipe.execute(raise_on_error=False)
    except (RedisError, OSError):  # Redis unreachable: nothing was sent
        await archive.release_redrives([(dead, m.entry_id) for m in mine])
        raise
    failed = [(dead, m.entry_id) for m, r in zip(mine, replies, strict=True) if _failed(r)]
    if failed:  # never reached the target: a later redrive may send them
        await archive.release_redrives(failed)
    return {m.entry_id: as_text(r) for m, r in zip(mine, replies, strict=True) if not _failed(r)}


def _failed(reply: object) -> bool:
    return isinstance(reply, Exception)
