"""`runbus` without its start-up cost, for the documentation's sessions.

Starting the `runbus` console script takes seconds on a loaded machine (it imports every
command group, redis, pydantic, structlog, rich), and the pages run dozens of commands. So a
page's shell finds a `runbus` shim first on its PATH: it hands its argv, environment, working
directory and its three standard streams (the file descriptors themselves, so pipes, files
and ``isatty`` are the shell's) over a Unix socket to this server, which imported the CLI
once and forks a child per command. The child runs the console script's own entry point
(``services.cli.main:app``) and sends back its exit status, which the shim exits with.

What a child cannot share with a fresh process is state set at import time: the server is
started with the page's shell environment, and the child gets the command's (an ``export``
of a page included). ``RUNBUS_DOCS_FORKSERVER=0`` runs the real console script instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from shared.settings import REPO_ROOT

#: Set to 0 in the environment to run the real console script for every command.
SWITCH = "RUNBUS_DOCS_FORKSERVER"
MAX_REQUEST_BYTES = 1 << 20

SHIM = """#!{python} -SE
# runbus for the documentation's sessions: the command runs in a child of tests.docs.forkserver
import json, os, socket, struct, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
sock.connect({socket_path!r})
request = {{"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}}
socket.send_fds(sock, [json.dumps(request).encode()], [0, 1, 2])
reply = sock.recv(4)
sys.exit(struct.unpack("!i", reply)[0] if len(reply) == 4 else 70)
"""


def _streams() -> None:
    """Standard streams on the fds just received, buffered as a new process's would be."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        old = getattr(sys, name)
        tty = os.isatty(fd)
        raw = io.FileIO(fd, mode, closefd=False)
        buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        stream = io.TextIOWrapper(
            buffered, encoding=old.encoding, errors=old.errors,
            line_buffering=tty or name == "stderr", write_through=name == "stderr",
        )  # fmt: skip
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _run(conn: socket.socket) -> int:
    """In the child: become the command, run it, its exit status."""
    data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST_BYTES, 3)
    request = json.loads(data)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [str(REPO_ROOT / ".venv" / "bin" / "runbus"), *request["argv"]]
    _streams()
    from services.cli.main import app

    try:
        app()
        status = 0
    except SystemExit as exit_:
        status = _exit_status(exit_.code)
    except BaseException:  # as the interpreter would: print the trace, exit 1
        import traceback

        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return status


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def serve(socket_path: str) -> None:
    """Accept commands forever, one forked child each (the server is killed at the end)."""
    import services.cli.main  # noqa: F401 - the import is what every command shares

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(socket_path)
    server.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        if os.fork() == 0:
            server.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            status = _run(conn)
            with contextlib.suppress(OSError):
                conn.send(struct.pack("!i", status))
            os._exit(status)
        conn.close()


def wanted() -> bool:
    """Should the pages' `runbus` be the shim? (Read from the test run's own environment.)"""
    return os.environ.get(SWITCH) != "0"


@contextlib.contextmanager
def runbus_shim(bin_dir: Path, env: dict[str, str]) -> Iterator[None]:
    """A forkserver with the shell's `env`, and `bin_dir/runbus` calling it, while in use."""
    socket_path = str(bin_dir / "runbus.sock")
    proc = subprocess.Popen(
        [sys.executable, "-c", f"from tests.docs.forkserver import serve; serve({socket_path!r})"],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_ready(proc)
        shim = bin_dir / "runbus"
        shim.write_text(SHIM.format(python=sys.executable, socket_path=socket_path))
        shim.chmod(0o755)
        yield
    finally:
        proc.kill()
        proc.wait()


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "ready" once it listens; "" when it died
    if line.strip() != "ready":
        raise AssertionError(f"the runbus forkserver did not start (printed {line!r})")
