"""Shared fixtures: real servers on free loopback ports, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.servers import RunningServer, redis_server, tansu_broker


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RunningServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def tansu_srv() -> Iterator[RunningServer]:
    with tansu_broker() as server:
        yield server
