"""`VersionMap`: trusted only while subscribed, a read never puts back an older version, entries
expire and are bounded."""

from __future__ import annotations

from services.api.versions import VersionMap


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def subscribed(**kwargs: object) -> VersionMap:
    versions = VersionMap(**kwargs)  # type: ignore[arg-type]
    versions.subscribed()
    return versions


def test_nothing_is_known_before_the_subscription_is_confirmed() -> None:
    versions = VersionMap()
    versions.changed(1, "data", 3)
    versions.learn(1, "data", 3, versions.begin())
    assert versions.version(1, "data") is None and len(versions) == 0
    versions.subscribed()
    versions.changed(1, "data", 4)
    assert versions.version(1, "data") == 4


def test_a_change_message_sets_the_version_even_a_lower_one() -> None:
    versions = subscribed()
    versions.changed(1, "data", 9)
    versions.changed(1, "data", 1)  # a document rebuilt from scratch starts again at 1
    assert versions.version(1, "data") == 1
    assert versions.version(1, "eval") is None and versions.version(2, "data") is None


def test_a_read_overtaken_by_a_change_teaches_nothing() -> None:
    versions = subscribed()
    token = versions.begin()  # a read sends its GETRANGE, which sees version 5
    versions.changed(1, "data", 6)  # then the change to 6 arrives before the read's answer
    versions.learn(1, "data", 5, token)
    assert versions.version(1, "data") == 6
    # a change of another document stops the learning too (one counter: conservative)
    token = versions.begin()
    versions.changed(2, "eval", 1)
    versions.learn(3, "data", 7, token)
    assert versions.version(3, "data") is None
    versions.learn(3, "data", 7, versions.begin())
    assert versions.version(3, "data") == 7


def test_losing_the_subscription_forgets_everything_and_stops_learning() -> None:
    versions = subscribed()
    versions.changed(1, "data", 2)
    token = versions.begin()
    versions.lost()
    assert versions.version(1, "data") is None and len(versions) == 0
    versions.learn(1, "data", 2, token)
    versions.changed(1, "data", 3)
    assert len(versions) == 0
    # a read begun before the subscription came back cannot teach either
    versions.subscribed()
    versions.learn(1, "data", 2, token)
    assert versions.version(1, "data") is None


def test_a_confirmation_after_a_reconnect_starts_empty() -> None:
    versions = subscribed()
    versions.changed(1, "data", 2)
    versions.subscribed()  # redis-py resubscribed: changes in between were not heard
    assert versions.version(1, "data") is None and versions.trusted


def test_a_closed_connection_is_not_trusted() -> None:
    versions = subscribed()
    versions.changed(1, "data", 2)
    open_ = [True]
    versions.connected = lambda: open_[0]
    assert versions.version(1, "data") == 2
    open_[0] = False
    assert versions.version(1, "data") is None and not versions.trusted
    versions.learn(1, "eval", 1, versions.begin())
    assert len(versions) == 1


def test_an_entry_is_believed_for_its_ttl_then_read_again() -> None:
    clock = Clock()
    versions = subscribed(ttl_s=1.0, clock=clock)
    versions.changed(1, "data", 2)
    clock.now += 0.999
    assert versions.version(1, "data") == 2
    clock.now += 0.001
    assert versions.version(1, "data") is None
    versions.learn(1, "data", 2, versions.begin())
    assert versions.version(1, "data") == 2


def test_the_map_keeps_at_most_its_bound_dropping_the_oldest_set() -> None:
    versions = subscribed(max_entries=3)
    for project in range(1, 5):
        versions.changed(project, "data", project)
    assert len(versions) == 3 and versions.version(1, "data") is None
    versions.changed(2, "data", 20)  # set again: now the newest
    versions.changed(5, "data", 5)
    assert versions.version(2, "data") == 20 and versions.version(3, "data") is None
