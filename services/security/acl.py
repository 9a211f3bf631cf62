"""Least-privilege Redis ACL users of runbus, rendered as a Redis ACL file (``users.acl``).

One user per role; the stages' users are derived from `shared.pipeline.PIPELINE` (each one
consumes its input stream as its group, moves entries to its output streams, and counts in its
metrics hash), so are the grants on its outlets (their writer XADDs and reads them back; their
outside reader, a user of its own, consumes them as its group), and every key, key pattern and
channel is spelled by `shared.names.Names`. Each
role is a list of `Grant`s: the first is the user's root permissions, the others become ACL
selectors (Redis 7), so a command is allowed only on the keys listed beside it ("XADD only to
the dead-letter stream", not "XADD anywhere the user can read").

Two Redis rules shape the grants:

- ``EVAL``/``EVALSHA`` need read *and* write permission on every declared key, while each
  command the script runs is checked again, with the caller's permissions, on the key it
  touches. So the atomic-move scripts get a selector of their own (script commands on the
  script's keys) and the commands inside them (``XACK``, ``XADD``, ``XDEL``) are granted on
  exactly the keys they may touch.
- ACLs restrict commands, keys and channels, not consumer-group names nor command options:
  a consumer could read another group on its own stream, and a producer's ``XADD`` may carry
  ``MAXLEN``. Those are trusted-code boundaries, documented in the README (Security).

Passwords are never in the file in clear: a role with a password is rendered with its SHA-256
(``#<hex>``); a role without one is rendered ``off`` (nobody can log in as it). The
``default`` user is always ``off``: every client must authenticate.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from shared.names import COACH_GROUP, PERSISTER_GROUP, Names, StreamKind
from shared.pipeline import PIPELINE, Stage

#: Namespaces that are safe inside ACL glob patterns (no ``*?[]\``, no spaces, no colon).
NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ADMIN = "admin"
#: Connection housekeeping every role has: redis-py's health check sends PING.
_CONNECTION = ("ping",)
#: What a Redis Cluster client needs besides: redis-py's cluster client maps the slots with
#: CLUSTER SLOTS (on connect and after every MOVED), and learns each command's key positions
#: with COMMAND (COMMAND GETKEYS for commands whose keys move, e.g. XREADGROUP). All read-only.
_CLUSTER_CONNECTION = ("cluster|slots", "command")
#: What a stage needs on the stream it consumes as a group (``shared.consumer.StreamWorker``).
_CONSUME = (
    "xreadgroup",
    "xack",
    "xpending",
    "xautoclaim",
    "xclaim",
    "xgroup|create",
    "xinfo|groups",
    "xinfo|stream",
    "xtrim",
)
#: An outside reader of an outlet: its group, no trimming (the writer caps the stream).
_CONSUME_OUTLET = tuple(command for command in _CONSUME if command != "xtrim")
#: redis-py loads scripts with SCRIPT LOAD, and checks them with SCRIPT EXISTS in pipelines.
_SCRIPTS = ("evalsha", "eval", "script|load", "script|exists")
_STATUS = ("xinfo|stream", "xinfo|groups", "xinfo|consumers", "xlen", "xpending")
#: The coach's cache scripts and transactions (services/coach/io.py).
_COACH_COMMANDS = (
    "get", "set", "del", "exists", "mget", "hget", "hgetall", "hset", "hdel", "hincrby",
    "sadd", "srem", "smembers",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Grant:
    """Commands allowed on keys and channels.

    Keys: ``~k`` read and write, ``%R~k`` read only, ``%W~k`` write only. Channels are per
    grant too (a Redis selector has its own), so PUBLISH/SUBSCRIBE sit with their channel.
    """

    commands: tuple[str, ...]
    keys: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    def rules(self) -> str:
        """The grant as ACL rules."""
        parts = [*self.keys, *(f"&{c}" for c in self.channels)]
        return " ".join([*parts, *(f"+{c}" for c in self.commands)])


@dataclass(frozen=True, slots=True)
class Role:
    """One ACL user: what it is for, and its grants (each one an ACL selector)."""

    name: str
    purpose: str
    grants: tuple[Grant, ...]


def check_namespace(namespace: str) -> str:
    """The namespace, if it can be used verbatim inside ACL key and channel patterns."""
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        raise ValueError(
            f"namespace {namespace!r} cannot be rendered into an ACL file: "
            "use letters, digits, '_' and '-' (at most 64, starting with a letter or digit)"
        )
    return namespace


def _keys(prefix: str, keys: Iterable[str]) -> tuple[str, ...]:
    """ACL key patterns: each key named exactly (`prefix` ``~``, ``%R~`` or ``%W~``)."""
    return tuple(f"{prefix}{key}" for key in keys)


def _moves(names: Names, stage: Stage) -> tuple[str, ...]:
    """Every partition's input and outputs of `stage`, partition by partition."""
    kinds = (stage.reads, *stage.writes)
    return tuple(p.stream(kind) for p in names.all_partitions for kind in kinds)


def _consume(names: Names, stage: Stage) -> tuple[Grant, ...]:
    """A pipeline stage: consume its input as its group, move entries atomically to its outputs.

    One selector per grant names every partition's streams: a selector listing the keys of
    several partitions lets a script declare keys of two partitions, but that grants nothing the
    user could not do with one command per key (the commands inside are checked one by one), and
    a cluster refuses such a script anyway (CROSSSLOT). The line stays one selector per grant
    however many partitions there are.
    """
    sinks = tuple(p.stream(k) for p in names.all_partitions for k in stage.writes)
    return (
        Grant(_CONSUME, _keys("~", names.streams(stage.reads))),
        Grant(_SCRIPTS, _keys("~", _moves(names, stage))),
        Grant(("xadd",), _keys("%W~", sinks)),
        Grant(("hincrby", "hincrbyfloat"), (f"~{names.metrics(stage.name)}",)),
    )


def _publish(names: Names) -> Grant:
    """XADD to every partition's incoming stream (any partition is accepted)."""
    return Grant(("xadd",), _keys("%W~", names.streams(StreamKind.EVENTS)))


def _coach_reads(names: Names) -> Grant:
    keys = (f"%R~{names.coach_documents_pattern}", f"%R~{names.coach_projects}")
    return Grant(("get", "getrange", "mget", "smembers", "sismember"), keys)


def _search(names: Names) -> Grant:
    """The dashboard's search: XRANGE of one id on every partition's incoming and valid stream."""
    streams = (*names.streams(StreamKind.EVENTS), *names.streams(StreamKind.VALID))
    return Grant(("xrange",), _keys("%R~", streams))


def _coach_cache(names: Names) -> tuple[Grant, ...]:
    keys = tuple(f"~{pattern}" for pattern in names.coach_patterns)
    return (
        Grant(_COACH_COMMANDS, keys),
        Grant(_SCRIPTS, keys),
        Grant(("publish",), channels=(names.coach_changes,)),
    )


def _outlets(names: Names, role: str) -> tuple[Grant, ...]:
    """`role`'s grants on the outlets it writes (XADD, read back) and reads (as its group)."""
    mine = PIPELINE.outlets_of(role)
    written = tuple(o.key(names) for o in mine if o.writer == role)
    read = tuple(o.key(names) for o in mine if o.reader == role)
    grants = []
    if written:
        grants += [
            Grant(("xadd",), _keys("%W~", written)),
            Grant(("xrevrange",), _keys("%R~", written)),
        ]
    if read:
        grants.append(Grant(_CONSUME_OUTLET, _keys("~", read)))
    return tuple(grants)


def _reader_role(names: Names, reader: str) -> Role:
    """The user of an outside reader of outlets: it consumes them as its group, nothing else."""
    outlets = [o for o in PIPELINE.outlets_of(reader) if o.reader == reader]
    what = ", ".join(f"group {o.group} on the {o.title} stream" for o in outlets)
    return Role(reader, f"Outside runbus: {what}; nothing else.", _outlets(names, reader))


def _outlet_readers(names: Names) -> tuple[Role, ...]:
    """One user per outside reader, in declaration order."""
    readers = dict.fromkeys(o.reader for o in PIPELINE.outlets)
    return tuple(_reader_role(names, reader) for reader in readers)


def _retention(names: Names) -> tuple[Grant, ...]:
    """Dead-letter retention (`services.persister.retention`): read the oldest dead letters
    and each stream's length and arrivals, trim the archived ones, report in its hash."""
    dead = names.streams(StreamKind.DEAD)
    return (
        Grant(("xrange", "xlen", "xinfo|stream"), _keys("%R~", dead)),
        Grant(("xtrim",), _keys("~", dead)),
        Grant(("hincrby", "hset"), (f"~{names.dead_letter_retention}",)),
    )


#: What a stage owns besides its streams and metrics, by the group the pipeline declares for it
#: (what it is, in the role's purpose; its grants).
STAGE_EXTRAS: Mapping[str, tuple[str, Callable[[Names], tuple[Grant, ...]]]] = {
    COACH_GROUP: ("owns the coach cache", _coach_cache),
    PERSISTER_GROUP: ("archives and trims expired dead letters", _retention),
}


def _stage_role(names: Names, stage: Stage) -> Role:
    """The user of one declared stage: its group on its input, its outputs, its extras."""
    source = PIPELINE.stream(stage.reads).title
    writes = ", ".join(PIPELINE.stream(k).title for k in stage.writes)
    purpose = f"Group {stage.group} on the {source} stream; moves to {writes}"
    grants = _consume(names, stage)
    if stage.group in STAGE_EXTRAS:
        what, extra = STAGE_EXTRAS[stage.group]
        purpose, grants = f"{purpose}; {what}", (*grants, *extra(names))
    return Role(stage.name, purpose + ".", grants)


def _dead_letters(names: Names) -> tuple[Grant, ...]:
    """Read, redrive (each to its partition's incoming stream) and purge dead letters; audit;
    the status of every stream (the outlets' too: `runbus status` shows their groups)."""
    dead, events = names.streams(StreamKind.DEAD), names.streams(StreamKind.EVENTS)
    audit = names.redrive_audit
    pipeline = (p.stream(s.kind) for p in names.all_partitions for s in PIPELINE.streams)
    streams = (*pipeline, *(o.key(names) for o in PIPELINE.outlets), audit)
    redrives = (key for p in names.all_partitions for key in (p.dead, p.events))
    return (
        Grant(_STATUS, _keys("%R~", streams)),
        Grant(("xrange", "xrevrange", "xread"), _keys("%R~", (*dead, audit))),
        Grant(("xdel",), _keys("~", dead)),
        Grant(_SCRIPTS, _keys("~", redrives)),
        Grant(("xadd",), _keys("%W~", (*events, audit))),
        Grant(("hgetall",), (f"%R~{names.dead_letter_retention}",)),
        Grant(("info",)),  # status: Redis's memory against maxmemory
    )


def roles(names: Names) -> tuple[Role, ...]:
    """Every runbus role under one namespace, in file order (the stages in pipeline order)."""
    check_namespace(names.namespace)
    metrics = Grant(("hgetall",), (f"%R~{names.metrics_pattern}",))
    subscribe = Grant(("subscribe", "unsubscribe"), channels=(names.coach_changes,))
    return (
        Role("producer", "XADD to the incoming stream only: no read, no other key.",
             (_publish(names),)),
        *(_stage_role(names, stage) for stage in PIPELINE.stages),
        Role("ops", "Dead letters: read, redrive, purge, audit; status of every stream.",
             _dead_letters(names)),
        Role("dashboard", "GET coach documents and SUBSCRIBE to their change channel only.",
             (_coach_reads(names), subscribe)),
        Role("api", "The HTTP API and its dashboard: publish, coach reads and their change "
             "channel, dead letters and status, metrics, its outlets (action requests).",
             (_publish(names), _coach_reads(names), subscribe, *_dead_letters(names), metrics,
              _search(names), *_outlets(names, "api"))),
        *_outlet_readers(names),
    )  # fmt: skip


ROLE_NAMES: tuple[str, ...] = tuple(r.name for r in roles(Names()))


def password_hash(password: SecretStr) -> str:
    """The ACL form of a password: ``#`` + its SHA-256 in hex (Redis never sees it in clear)."""
    return "#" + hashlib.sha256(password.get_secret_value().encode()).hexdigest()


def _auth(password: SecretStr | None) -> str:
    return f"on {password_hash(password)}" if password is not None else "off resetpass"


def user_line(role: Role, password: SecretStr | None, cluster: bool = False) -> str:
    """One ACL file line: the user, reset to PING (and cluster discovery), then its selectors."""
    connection = (*_CONNECTION, *(_CLUSTER_CONNECTION if cluster else ()))
    parts = [f"user {role.name}", _auth(password), "resetkeys resetchannels -@all"]
    parts += [f"+{command}" for command in connection]
    parts += [f"({g.rules()})" for g in role.grants]
    return " ".join(parts)


def render(
    namespace: str,
    passwords: Mapping[str, SecretStr] | None = None,
    partitions: int = 1,
    cluster: bool = False,
) -> str:
    """The ACL file for `namespace` in `partitions` (for a Redis Cluster's nodes: `cluster`).

    Roles without a password are rendered ``off``. The same file loads on every node of a
    cluster: each node checks the rules of the commands it is sent, whatever slots it owns.
    """
    passwords = passwords or {}
    unknown = set(passwords) - {*ROLE_NAMES, ADMIN}
    if unknown:
        raise ValueError(f"no such role: {', '.join(sorted(unknown))}")
    lines = ["user default off resetpass resetkeys resetchannels -@all"]
    admin = passwords.get(ADMIN)
    lines.append(f"user {ADMIN} {_auth(admin)} resetkeys resetchannels ~* &* +@all")
    users = roles(Names(namespace, partitions))
    lines += [user_line(role, passwords.get(role.name), cluster) for role in users]
    return "\n".join(lines) + "\n"


def read_passwords(directory: Path, generate: bool = False) -> dict[str, SecretStr]:
    """Passwords from one file per role (``<dir>/<role>``); `generate` creates missing ones."""
    found: dict[str, SecretStr] = {}
    for name in (ADMIN, *ROLE_NAMES):
        path = directory / name
        if not path.exists() and generate:
            write_secret(path, secrets.token_urlsafe(32))
        if path.exists():
            found[name] = SecretStr(path.read_text(encoding="utf-8").strip())
    return found


def write_secret(path: Path, value: str) -> None:
    """Write a secret file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
