"""Story: a producer installs runbus next to a top-level package of its own named ``shared``.

The wheel holds one top-level package, ``runbus``; the service keeps its ``shared``; ``from
runbus import Producer`` publishes to the real Redis exactly what the repository's producer
would; and every module of the wheel, the ``runbus`` console script included, works there.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import redis

from shared.producer import prepare
from shared.settings import REPO_ROOT, Settings
from shared.wire import DATA_FIELD
from tests.conftest import REDIS_URL
from tests.integration.packaging.conftest import ProducerVenv, clean_env, run
from tests.unit.contract.events import brewslm

pytestmark = pytest.mark.integration

PRODUCER = '''\
"""A service of its own: its package `shared`, and runbus as a library."""
import asyncio, importlib.util, json, sys

import shared
from runbus import Producer, Settings, async_redis


async def main() -> None:
    settings = Settings()
    client = async_redis(settings)
    entry_id = await Producer(client, settings.names, settings.taxonomy).publish(
        json.loads(sys.argv[1])
    )
    await client.aclose()
    print(json.dumps({"entry_id": entry_id, "shared": shared.OWNER,
                      "services": importlib.util.find_spec("services") is not None}))


asyncio.run(main())
'''

IMPORT_ALL = """\
import importlib, pkgutil, runbus
names = [m.name for m in pkgutil.walk_packages(runbus.__path__, "runbus.")]
for name in names:
    if not name.endswith(".__main__"):  # __main__ runs the command line
        importlib.import_module(name)
print(len(names))
"""


def repository_files(top: str) -> set[str]:
    """Where each file of the repository's `top` package goes in the wheel."""
    root = REPO_ROOT / top
    return {
        f"runbus/_{top}/{path.relative_to(root).as_posix()}"
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_wheel_holds_runbus_alone_with_every_module_and_file(
    producer_venv: ProducerVenv,
) -> None:
    # given the built wheel
    with zipfile.ZipFile(producer_venv.wheel) as archive:
        names = set(archive.namelist())
    # then nothing but runbus is at its top, and it is typed
    assert {name.split("/", 1)[0] for name in names} == {"runbus", "runbus-0.1.0.dist-info"}
    assert "runbus/py.typed" in names
    # and every file of shared/ and services/ is under runbus (SQL and vendor files included)
    assert repository_files("shared") | repository_files("services") <= names


def test_a_service_with_its_own_shared_publishes_with_runbus(
    producer_venv: ProducerVenv, namespace: str, sync_client: redis.Redis, tmp_path: Path
) -> None:
    # given a service's script, outside the repository, on a namespace of its own
    script = tmp_path / "producer.py"
    script.write_text(PRODUCER)
    event = brewslm(event_id="pkg-1")
    env = clean_env(RUNBUS_REDIS_URL=REDIS_URL, RUNBUS_NAMESPACE=namespace)
    # when it publishes one event
    out = json.loads(run(producer_venv.python, script, json.dumps(event), cwd=tmp_path, env=env))
    # then its own `shared` is the one it imports, and runbus brought no top-level `services`
    assert out["shared"] == "acme"
    assert out["services"] is False
    # and the entry on the stream holds what the repository's producer sends for that event
    names = Settings(namespace=namespace, _env_file=None).names  # type: ignore[call-arg]
    entries = sync_client.xrange(names.events)
    expected = prepare(event, Settings(_env_file=None).taxonomy)  # type: ignore[call-arg]
    assert [(i.decode(), f) for i, f in entries] == [(out["entry_id"], {DATA_FIELD: expected})]


def test_every_module_of_the_wheel_imports_and_the_console_script_runs(
    producer_venv: ProducerVenv, tmp_path: Path
) -> None:
    # when every module of the installed package is imported, and `runbus --help` runs
    imported = run(producer_venv.python, "-c", IMPORT_ALL, cwd=tmp_path)
    helped = run(producer_venv.bin / "runbus", "--help", cwd=tmp_path)
    # then all of them import there (each rewritten import resolves) and the script answers
    shipped = repository_files("shared") | repository_files("services")
    modules = [name for name in shipped if name.endswith(".py")]
    assert int(imported) == len(modules) + 1  # and runbus.cli (runbus itself is the root)
    assert "Usage: runbus" in helped
