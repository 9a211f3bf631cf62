"""Dead letters over partitions: where an id points, merged time order, the bus-wide names.

Pure parts of reading and moving dead letters of several partitions (`shared.names`): each
partition has its own dead-letter stream, so every id shown to a user says which one it is on
(`services.ops.stream_ids.qualified`), and lists from several streams merge in time order,
ties broken by partition index.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.ops.stream_ids import DeadLetterId, parse_dead_letter_id, qualified
from shared.names import Names, StreamKind
from shared.wire import Fields, entry_id_key

#: One dead-letter entry and where it is: (partition index, entry id, fields).
Located = tuple[int, str, Fields]


def merge_key(item: Located) -> tuple[int, int, int]:
    """Merged time order of entries of several partitions: (ms, seq, partition)."""
    partition, entry_id, _ = item
    return (*entry_id_key(entry_id), partition)


def merged(items: Iterable[Located], *, newest_first: bool = False) -> list[Located]:
    """`items` in merged time order (oldest first unless `newest_first`)."""
    return sorted(items, key=merge_key, reverse=newest_first)


def shown_id(names: Names, partition: int, entry_id: str) -> str:
    """The id a user sees for an entry of `partition`: plain with one partition, else qualified."""
    return qualified(partition, entry_id, names.partitions)


def bus_stream(names: Names, kind: StreamKind) -> str:
    """The name of `kind` for the whole bus: the stream itself with one partition, else the
    glob of every partition's (their hash tags are ``{<ns>.<index>.<k>}``)."""
    if names.partitions == 1:
        return names.stream(kind)
    return "{" + names.namespace + ".*}:" + kind.value


def lookups(names: Names, ids: Sequence[str], field: str = "ids") -> list[tuple[int, str]]:
    """Every (partition, entry id) the ids can name, in the order given (plain ids: every
    partition, which is partition 0 alone with one partition)."""
    out: list[tuple[int, str]] = []
    for value in ids:
        parsed: DeadLetterId = parse_dead_letter_id(value, field)
        out += [(p, parsed.entry) for p in parsed.partitions(names.partitions)]
    return list(dict.fromkeys(out))


def by_partition(pairs: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    """Entry ids grouped by partition (each group keeps the order given)."""
    groups: dict[int, list[str]] = {}
    for partition, entry_id in pairs:
        groups.setdefault(partition, []).append(entry_id)
    return groups
