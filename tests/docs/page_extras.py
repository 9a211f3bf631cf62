"""What a page needs besides the live bus, set up before its sessions and removed after.

The history page creates PostgreSQL roles and schemas: they are the test database's, named
after the page's namespace (``<ns>_owner``, ``<ns>_app``, schemas ``<ns>`` and ``<ns>_dev``),
so that the output, rewritten back (`tests.docs.shell.Rewrite`), reads as the page's
``runbus_owner``... The page's commands are rewritten to those names (`Extras.commands`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis

from shared.settings import Settings
from tests.conftest import POSTGRES_DSN, REDIS_URL

#: What a page's step asks of the harness: called with the shell's working directory.
Action = Callable[[Path], None]


@dataclass(frozen=True)
class Extras:
    """A page's own rewrites of its commands ((regex, replacement), applied in order), and the
    steps the harness does itself ((regex matching the step's command, action))."""

    commands: tuple[tuple[str, str], ...] = ()
    actions: tuple[tuple[str, Action], ...] = ()

    def act(self, command: str, work: Path) -> None:
        """Run the action of every pattern that `command` matches."""
        for pattern, action in self.actions:
            if re.match(pattern, command):
                action(work)


async def _drop(ns: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{ns}", "{ns}_dev" CASCADE')
        for role in (f"{ns}_owner", f"{ns}_app"):
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')
    finally:
        await conn.close()


def _drop_roles_and_schemas(ns: str) -> None:
    """The page's schemas and roles gone (names of our own making: quoting is enough)."""
    asyncio.run(_drop(ns))


@contextmanager
def postgres_roles(settings: Settings) -> Iterator[Extras]:
    """The history page's PostgreSQL: the page's roles and schemas in the test database
    (``postgres@127.0.0.1:5432/runbus`` and ``me@`` read as the test's superuser DSN)."""
    ns = settings.namespace
    server = POSTGRES_DSN.removeprefix("postgresql://").split("@", 1)[1]  # host:port/db
    superuser = POSTGRES_DSN.removeprefix("postgresql://").split("@", 1)[0]
    try:
        yield Extras(
            commands=(
                (r"\brunbus_owner\b", f"{ns}_owner"),
                (r"\brunbus_app\b", f"{ns}_app"),
                (r"postgresql://(?:me|postgres)@", f"postgresql://{superuser}@"),
                (r"@127\.0\.0\.1:5432/runbus\b", f"@{server}"),
                (r"search_path=runbus", f"search_path={ns}"),
                (r"-v schema=runbus\b", f"-v schema={ns}"),
                (r"\brunbus\.history\b", f"{ns}.history"),
            )
        )
    finally:
        _drop_roles_and_schemas(ns)


def _acl_users(ns: str, acl_file: Path) -> list[tuple[str, list[str]]]:
    """The roles of a rendered ACL file as users of the page's own (``<ns>_<role>``); the
    ``default`` user is the server's, never touched."""
    users = []
    for line in acl_file.read_text(encoding="utf-8").splitlines():
        _, name, *rules = line.split()
        if name != "default":
            users.append((f"{ns}_{name}", rules))
    return users


@contextmanager
def redis_acl_users(settings: Settings) -> Iterator[Extras]:
    """The security page's Redis users: the roles of the ``users.acl`` it rendered, loaded
    into the machine's Redis as ``<ns>_<role>`` (``--user producer`` reads so) by the page's
    ``$ # load users.acl ...`` step, deleted after the page."""
    ns = settings.namespace
    client = redis.Redis.from_url(REDIS_URL)

    def load(work: Path) -> None:
        for name, rules in _acl_users(ns, work / "users.acl"):
            client.acl_setuser(name, reset=True)  # then the file's rules, as ACL LOAD would
            client.execute_command("ACL", "SETUSER", name, *rules)

    try:
        yield Extras(
            commands=(
                (r"--user (\w+)", rf"--user {ns}_\1"),
                (r"ACL DRYRUN (\w+)", rf"ACL DRYRUN {ns}_\1"),
            ),
            actions=((r"# load users\.acl", load),),
        )
    finally:
        users = (u.decode() if isinstance(u, bytes) else str(u) for u in client.acl_users())
        mine = [user for user in users if user.startswith(f"{ns}_")]
        if mine:
            client.acl_deluser(*mine)
        client.close()


#: The pages with extras, by file name.
PAGES: dict[str, Callable[[Settings], AbstractContextManager[Extras]]] = {
    "history.md": postgres_roles,
    "security.md": redis_acl_users,
}


@contextmanager
def for_page(page: Path | None, settings: Settings) -> Iterator[Extras]:
    """The extras of `page` (none for most pages)."""
    setup = PAGES.get(page.name) if page is not None else None
    if setup is None:
        yield Extras()
        return
    with setup(settings) as extras:
        yield extras
