"""What is deployed follows `PIPELINE`: `runbus run all`'s children, the health checks, compose.

From the declaration alone: one worker per stage, started in start order before the API, each
run by ``runbus run <stage>`` and checked by ``python -m services.runtime.healthcheck <stage>``.
The supervisor's process list and ``compose.yaml`` must say the same.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli.run import Service
from services.runtime import healthcheck
from services.runtime.logic import children
from shared.pipeline import PIPELINE
from shared.settings import Settings

COMPOSE = Path(__file__).resolve().parents[3] / "compose.yaml"
API = "api"
#: Every service runbus runs, derived: the stages in start order, then the API.
EXPECTED = (*PIPELINE.stage_names, API)


def healthcheck_test(service: str) -> list[str]:
    """The container healthcheck of one service, as compose deploys it."""
    return ["CMD", "python", "-m", healthcheck.__name__, service]


#: compose.yaml's profile running the services on a Redis Cluster, and its services' prefix.
CLUSTER = "cluster"


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def deployed(profile: str | None = None) -> dict[str, dict[str, Any]]:
    """compose.yaml's runbus containers (built from this repository) of a profile, by service.

    No profile: the default deployment (services without a profile).
    """
    return {
        name: svc
        for name, svc in compose_services().items()
        if "build" in svc and svc.get("profiles", [None]) == [profile]
    }


def test_run_all_starts_every_stage_in_start_order_then_the_api() -> None:
    specs = children()
    assert tuple(s.name for s in specs) == EXPECTED
    for spec in specs:
        assert spec.argv[:2] == (sys.executable, "-m")
        assert spec.argv[3:] == ("run", spec.name)


def test_validators_replicate_the_validator_only() -> None:
    validator = PIPELINE.stage("validator").name
    specs = children(2, api=False)
    others = [name for name in PIPELINE.stage_names if name != validator]
    assert [s.name for s in specs] == [f"{validator}-0", f"{validator}-1", *others]
    slots = [(validator, "--slot", str(slot)) for slot in range(2)]
    assert [s.argv[-3:] for s in specs[:2]] == slots


def test_runbus_run_offers_every_service_and_all() -> None:
    assert [s.value for s in Service] == [*EXPECTED, "all"]


def test_compose_deploys_one_container_per_service_with_its_command_and_healthcheck() -> None:
    containers = deployed()
    assert sorted(containers) == sorted(EXPECTED)
    for name, svc in containers.items():
        assert svc["command"] == ["runbus", "run", name]
        assert svc["healthcheck"]["test"] == healthcheck_test(name)


def test_the_cluster_profile_deploys_every_service_on_the_cluster_with_partitions() -> None:
    containers = deployed(CLUSTER)
    assert sorted(containers) == sorted(f"{CLUSTER}-{name}" for name in EXPECTED)
    for name in EXPECTED:
        svc = containers[f"{CLUSTER}-{name}"]
        assert svc["command"] == ["runbus", "run", name]
        assert svc["healthcheck"]["test"] == healthcheck_test(name)
        env = svc["environment"]
        assert env["RUNBUS_REDIS_CLUSTER"] == "true"
        assert env["RUNBUS_PARTITIONS"] == "${RUNBUS_PARTITIONS:-12}"
        assert env["RUNBUS_REDIS_URL"].startswith("redis://redis-node-1:")
        # Started once the cluster exists, never on the single-node Redis
        ready = svc["depends_on"]["redis-cluster-create"]["condition"]
        assert ready == "service_completed_successfully" and "redis" not in svc["depends_on"]
    # The single-node deployment is not part of the profile
    assert all(deployed()[name].get("profiles") is None for name in EXPECTED)


def test_the_cluster_profile_has_six_cluster_nodes_and_a_job_creating_3_plus_3() -> None:
    services = compose_services()
    nodes = sorted(
        n for n, s in services.items() if "--cluster-enabled yes" in str(s.get("command"))
    )
    assert nodes == [f"redis-node-{i}" for i in range(1, 7)]
    assert all(services[n]["profiles"] == [CLUSTER] for n in nodes)
    job = services["redis-cluster-create"]
    assert job["profiles"] == [CLUSTER] and job["restart"] == "no"
    assert job["depends_on"] == {n: {"condition": "service_healthy"} for n in nodes}
    script = job["command"][-1]
    assert "--cluster create" in script and "--cluster-replicas 1 --cluster-yes" in script
    assert "for n in 1 2 3 4 5 6" in script


@pytest.mark.parametrize("service", EXPECTED)
def test_the_healthcheck_command_accepts_every_deployed_service(
    service: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []

    async def verdict(settings: Settings, name: str, max_idle_s: float) -> tuple[bool, list[str]]:
        asked.append(name)
        return True, []

    monkeypatch.setattr(healthcheck, "check", verdict)
    assert healthcheck.main(healthcheck_test(service)[4:]) == 0
    assert asked == [service] and capsys.readouterr().out.strip() == f"{service}: healthy"


def test_the_healthcheck_refuses_what_is_not_deployed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        healthcheck.main(["all"])
    assert refused.value.code == 2 and "invalid choice" in capsys.readouterr().err
