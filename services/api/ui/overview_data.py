"""The overview's reading of the bus read directly: what a page shows before the live hub's
first status sample (`services.api.ui.overview_samples` is the usual source).

The reads are the JSON API's own: `bus_status` (``GET /api/status``), `read_stage_metrics`
(``GET /metrics``) and `dead_letter_stats` (``GET /api/dead-letters/stats``). A Redis that
does not answer is a reading without a status (the page says so), never an error page.
"""

from __future__ import annotations

from redis.exceptions import RedisError

from services.api.state import ApiState
from services.api.ui.overview_model import Reading
from services.ops.deadletters import dead_letter_stats
from services.ops.logic import now_utc
from services.ops.status import bus_status
from shared.metrics import read_stage_metrics
from shared.pipeline import PIPELINE

STATS_NOTE = "Counted over the dead letters on the stream now (a redrive or purge lowers them)."


async def read_now(state: ApiState) -> Reading:
    """The bus as it is now, read directly (one round of the API's reads)."""
    names = state.settings.names
    try:
        status = await bus_status(state.redis, names)
        metrics = await read_stage_metrics(state.redis, names, PIPELINE.stage_names)
        stats = await dead_letter_stats(state.redis, names)
    except (RedisError, OSError) as exc:
        return Reading(now_utc(), None, error=str(exc) or type(exc).__name__)
    return Reading(
        status.at,
        status,
        handled={row.stage: row.entries for row in metrics},
        dead_by_family=stats.by_family,
        families_note=STATS_NOTE,
        api_ready=state.store_ready,
    )
