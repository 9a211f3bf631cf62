"""CPU of the PostgreSQL backends serving one process (the persister), from /proc.

The machine's PostgreSQL is shared (other tests, other benchmarks), so summing every
``postgres`` process would count their work too. Instead: the process's TCP connections (its
socket inodes in ``/proc/<pid>/fd``, their local ports in ``/proc/<pid>/net/tcp*``) are matched
against ``pg_stat_activity.client_port``, and only those backends' CPU counts. Shared
background work (WAL writer, checkpointer) is left out.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg

from bench.env import POSTGRES_URL
from bench.services import cpu_s


def _socket_inodes(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return found
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(int(link[8:-1]))
    return found


def local_ports(pid: int) -> set[int]:
    """Local TCP ports of the connections a process holds."""
    inodes, ports = _socket_inodes(pid), set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[9]) in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def backends_of(pid: int) -> list[int]:
    """Process ids of the PostgreSQL backends serving the connections of process `pid`."""
    ports = sorted(local_ports(pid))
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", ports
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


async def backend_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each backend serving process `pid`."""
    found = {b: cpu_s(b) for b in await backends_of(pid)}
    return {b: s for b, s in found.items() if s is not None}


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings (a backend opened in between counts from zero)."""
    return sum(max(0.0, s - before.get(b, 0.0)) for b, s in after.items())
