"""The validator's effects: one atomic Lua move per batch to the valid or dead-letter stream.

A batch comes from one partition's incoming stream and moves to that partition's valid or
dead stream: the three share a hash tag, so the move is one single-slot script call.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.validator.logic import Valid, judge
from shared.consumer import BatchContext, Entry, Move
from shared.logging import get_logger

log = get_logger("runbus.validator")


async def validate_batch(batch: list[Entry], ctx: BatchContext) -> None:
    """Judge every entry, then move them all (ack + append) in one atomic call."""
    settings = ctx.settings
    taxonomy, limit, valid = settings.taxonomy, settings.max_event_bytes, ctx.partition.valid
    now = datetime.now(UTC)
    # Entry ids repeat across partitions: a derived event id must name its partition.
    partition = ctx.partition.index if settings.partitions > 1 else None
    moves: list[Move] = []
    rejected = 0
    for entry in batch:
        verdict = judge(entry.id, entry.fields, taxonomy, limit, now, partition)
        if isinstance(verdict, Valid):
            moves.append(Move(entry, valid, verdict.fields))
        else:
            rejected += 1
            moves.append(ctx.dead_letter_move(entry, verdict.errors, verdict.message))
    await ctx.move(moves)
    ctx.count("accepted", len(batch) - rejected)
    if rejected:
        log.debug("batch_validated", accepted=len(batch) - rejected, rejected=rejected)
