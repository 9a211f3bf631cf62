"""The ACL file for P partitions names every partition's streams, and nothing beyond the
namespace; with one partition it is the shipped file; for cluster nodes each role may map the
slots. Every expected key is spelled by `Names` and `PIPELINE`."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

import pytest
from typer.testing import CliRunner

from services.security.acl import ROLE_NAMES, render
from shared.names import Names, StreamKind
from shared.pipeline import PIPELINE, Stage
from shared.settings import REPO_ROOT
from tests.unit.security.test_acl_render import _app

SHIPPED = REPO_ROOT / "deploy" / "redis" / "users.acl"
Selector = tuple[set[str], set[str]]


def line(text: str, user: str) -> str:
    """The line of `user` in an ACL file."""
    return next(x for x in text.splitlines() if x.split()[1] == user)


def selectors(text: str, user: str) -> list[Selector]:
    """(key patterns, commands) of each selector of `user` in an ACL file."""
    found = []
    for selector in re.findall(r"\(([^)]*)\)", line(text, user)):
        tokens = selector.split()
        keys = {t for t in tokens if re.match(r"(%[RW])?~", t)}
        found.append((keys, {t[1:] for t in tokens if t.startswith("+")}))
    return found


def keys_with(text: str, user: str, command: str) -> set[str]:
    """Every key pattern `user` may run `command` on."""
    return {k for keys, commands in selectors(text, user) if command in commands for k in keys}


def root(text: str, user: str) -> str:
    """The user's rules outside its selectors."""
    return re.sub(r" \([^)]*\)", "", line(text, user))


def every(names: Names, *kinds: StreamKind) -> list[str]:
    """The streams of `kinds` in every partition."""
    return [p.stream(kind) for p in names.all_partitions for kind in kinds]


def exact(prefix: str, keys: list[str]) -> set[str]:
    return {f"{prefix}{k}" for k in keys}


PARTITIONS = [2, 12]


def test_one_partition_renders_the_shipped_file() -> None:
    assert render("runbus", partitions=1) == render("runbus") == SHIPPED.read_text()


@pytest.mark.parametrize("partitions", PARTITIONS)
@pytest.mark.parametrize("stage", PIPELINE.stages, ids=PIPELINE.stage_names)
def test_each_stage_consumes_and_moves_on_every_partition(stage: Stage, partitions: int) -> None:
    names, text = Names("runbus", partitions), render("runbus", partitions=partitions)
    # Its group on every partition's input stream, XADD to every partition's outputs
    assert keys_with(text, stage.name, "xreadgroup") == exact("~", every(names, stage.reads))
    assert keys_with(text, stage.name, "xautoclaim") == exact("~", every(names, stage.reads))
    assert keys_with(text, stage.name, "xadd") == exact("%W~", every(names, *stage.writes))
    # The move scripts: on each partition's input and outputs, no other stream of the bus
    bus = set(every(names, *StreamKind))
    scripted = {k.split("~", 1)[1] for k in keys_with(text, stage.name, "evalsha")}
    assert scripted & bus == set(every(names, stage.reads, *stage.writes))


@pytest.mark.parametrize("partitions", PARTITIONS)
def test_the_producer_may_xadd_to_every_incoming_stream_only(partitions: int) -> None:
    names, text = Names("runbus", partitions), render("runbus", partitions=partitions)
    assert selectors(text, "producer") == [
        (exact("%W~", every(names, StreamKind.EVENTS)), {"xadd"})
    ]


@pytest.mark.parametrize("partitions", PARTITIONS)
@pytest.mark.parametrize("role", ["ops", "api"])
def test_ops_and_the_api_see_every_partition_and_redrive_each_to_its_own(
    role: str, partitions: int
) -> None:
    names, text = Names("runbus", partitions), render("runbus", partitions=partitions)
    audit = names.redrive_audit
    dead, events = every(names, StreamKind.DEAD), every(names, StreamKind.EVENTS)
    # Status reads every stream: the partitions', the outlets' (the actions stream), the audit.
    shown = [*every(names, *StreamKind), *(o.key(names) for o in PIPELINE.outlets), audit]
    assert keys_with(text, role, "xlen") == exact("%R~", shown)
    # The api also reads one entry of the incoming and valid streams: the dashboard's search.
    searched = [*events, *every(names, StreamKind.VALID)] if role == "api" else []
    assert keys_with(text, role, "xrange") == exact("%R~", [*dead, audit, *searched])
    assert keys_with(text, role, "xdel") == exact("~", dead)
    outlets = [o.key(names) for o in PIPELINE.outlets if o.writer == role]  # the api's actions
    assert keys_with(text, role, "xadd") == exact("%W~", [*events, audit, *outlets])
    scripted = {k.split("~", 1)[1] for k in keys_with(text, role, "evalsha")}
    assert scripted == {*dead, *events}


@pytest.mark.parametrize("partitions", PARTITIONS)
@pytest.mark.parametrize("namespace", ["runbus", "team-a_2"])
def test_every_key_stays_in_the_namespace(namespace: str, partitions: int) -> None:
    names, text = Names(namespace, partitions), render(namespace, partitions=partitions)
    for role in ROLE_NAMES:
        for keys, _ in selectors(text, role):
            for key in (k.split("~", 1)[1] for k in keys):
                assert any(fnmatchcase(key, glob) for glob in names.key_patterns), key
        assert "~*" not in line(text, role) and "allkeys" not in line(text, role)


def test_partitions_only_add_streams_to_the_single_partition_file() -> None:
    # Given the file for one partition, and for twelve with their streams renamed to P=1's
    one, many, names = render("runbus"), render("runbus", partitions=12), Names("runbus", 12)
    spelled = re.escape("{runbus.") + r"\d+\.\d+" + re.escape("}")
    collapsed = re.sub(spelled, names.tag, many)
    # Then they differ only by repeated streams: same users, same selectors, same commands
    for role in ROLE_NAMES:
        assert [c for _, c in selectors(collapsed, role)] == [c for _, c in selectors(one, role)]
        assert [k for k, _ in selectors(collapsed, role)] == [k for k, _ in selectors(one, role)]
    assert len(many) > len(one)


def test_cluster_nodes_let_every_role_map_the_slots_and_nothing_more() -> None:
    plain, cluster = render("runbus", partitions=12), render("runbus", {}, 12, True)
    for role in ROLE_NAMES:
        assert root(cluster, role) == root(plain, role) + " +cluster|slots +command"
        assert selectors(cluster, role) == selectors(plain, role)
    for user in ("default", "admin"):
        assert root(cluster, user) == root(plain, user)


def test_cli_defaults_to_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the partitions and cluster mode of the environment
    monkeypatch.setenv("RUNBUS_PARTITIONS", "12")
    monkeypatch.setenv("RUNBUS_REDIS_CLUSTER", "true")
    defaulted = CliRunner().invoke(_app(), ["acl", "render"])
    # Then `runbus acl render` renders for them, and the options override them
    assert defaulted.exit_code == 0 and defaulted.output == render("runbus", {}, 12, True)
    args = ["acl", "render", "--partitions", "1", "--no-cluster"]
    overridden = CliRunner().invoke(_app(), args)
    assert overridden.output == SHIPPED.read_text()
    bad = CliRunner().invoke(_app(), ["acl", "render", "--partitions", "0"])
    assert bad.exit_code == 2
