"""Read the history as the HTTP API and the coach do: a run with its children, a project."""

import asyncio

from services.history import ProjectFilter
from services.history.reads import history_store, parse_when, project_events, run_events
from shared.settings import Settings


async def main() -> None:
    settings = Settings()
    async with history_store(settings) as store:  # opened, not migrated
        page = await run_events(store, "exp-42", children=True, limit=1000)
        for row in page.rows:  # list[HistoryRow], (ts, id) order
            print(row.to_dict()["run_id"], row.to_dict()["severity"])  # to_dict(): the JSON shape
        print("next page:", page.next_cursor)  # str | None
        errors = ProjectFilter(severity="error", since=parse_when("3650d"))
        page = await project_events(store, 7, errors)
        print("errors of project 7:", len(page.rows))
        print("all of project 7:", len([row async for row in store.iter_events(project_id=7)]))


if __name__ == "__main__":
    asyncio.run(main())
