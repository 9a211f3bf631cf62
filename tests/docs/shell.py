"""Running a page's console sessions in one bash, and comparing what they print with the page.

Each ``$ `` command runs in one persistent bash per page (so ``export`` and files carry over
from block to block), with stdin from /dev/null and stderr merged into stdout. After each
command the harness waits until the pipeline has handled everything (`settle`), so the next
command sees the effect of the last one, as a user who waits a second would.

Comparison (`matches`), after trailing spaces and trailing blank lines are dropped:

- a line that is only ``...`` stands for any number of lines (none included);
- ``...`` inside a line stands for any text (a stream id, a timestamp), like doctest's
  ELLIPSIS. Keep them rare: every one is something the tests cannot check;
- what differs between a test run and the page is rewritten first (`Rewrite`): the API's port
  and the namespace in commands, and back again in the output, where the host name in
  consumer names also reads ``vm``.

A command that fails (non-zero exit) must be followed by ``$ echo $?`` showing its status.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.docs.blocks import PROMPT, Block

SENTINEL = "@@docs-command-done@@"
ELLIPSIS = "..."
#: Longest a single command may take.
COMMAND_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Step:
    """One command of a session and the output the page shows for it."""

    block: Block
    line: int
    command: str
    expected: tuple[str, ...]
    raw: tuple[str, ...] = ()


def steps(block: Block) -> list[Step]:
    """The commands of a console block with their expected output."""
    found: list[Step] = []
    lines = list(block.lines)
    n = 0
    while n < len(lines):
        if not lines[n].startswith(PROMPT):
            n += 1
            continue
        start, command = n, [lines[n][len(PROMPT) :]]
        n += 1
        while n < len(lines) and (command[-1].endswith("\\") or lines[n].startswith("> ")):
            command.append(lines[n][2:] if lines[n].startswith("> ") else lines[n])
            n += 1
        out_start = n
        while n < len(lines) and not lines[n].startswith(PROMPT):
            n += 1
        line = block.line + 1 + start
        expected, raw = tuple(lines[out_start:n]), tuple(lines[start:out_start])
        found.append(Step(block, line, "\n".join(command), expected, raw))
    return found


def _normalised(lines: list[str] | tuple[str, ...]) -> list[str]:
    out = [line.rstrip() for line in lines]
    while out and not out[-1]:
        out.pop()
    return out


def matches(expected: tuple[str, ...] | list[str], actual: str) -> bool:
    """Does `actual` print what `expected` shows (with ``...`` as a wildcard)?"""
    pattern = []
    for line in _normalised(expected):
        if line.strip() == ELLIPSIS:
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            parts = (re.escape(part) for part in line.split(ELLIPSIS))
            pattern.append("[^\n]*?".join(parts) + r"\n")
    text = "".join(line + "\n" for line in _normalised(actual.splitlines()))
    return re.fullmatch("".join(pattern), text) is not None


@dataclass(frozen=True)
class Rewrite:
    """What differs between the page and the test's system, both ways."""

    port: int
    namespace: str
    host: str = "vm"
    #: A page's own rewrites of its commands (pattern, replacement), applied first: names of
    #: things outside the namespace (PostgreSQL roles, Redis users), which the test names
    #: after the namespace so that the output reads back as the page's.
    extra: tuple[tuple[str, str], ...] = ()

    def command(self, text: str) -> str:
        """The page's command as it must run against the test's system."""
        for pattern, replacement in self.extra:
            text = re.sub(pattern, replacement, text)
        text = text.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        text = text.replace("{runbus}", f"{{{self.namespace}}}")
        return re.sub(r"(?<![\w./-])runbus:(?=\w)", f"{self.namespace}:", text)

    def output(self, text: str) -> str:
        """The test's output as the page shows it."""
        text = text.replace(f"127.0.0.1:{self.port}", "127.0.0.1:8000")
        text = text.replace(f"-{self.host}-", "-vm-")  # consumer names: <service>-<host>-<slot>
        return text.replace(self.namespace, "runbus")


class Session:
    """One bash for a page; `run` returns what a command printed and its exit status."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self._proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._cwd = cwd
        self._lines: list[str] = []
        self._ready = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._ready:
                self._lines.append(line)
                self._ready.notify_all()

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT_S) -> tuple[str, int]:
        """Run `command` (stdin /dev/null) in the page's shell; its output and status."""
        script = self._cwd / ".docs-command.sh"
        script.write_text(command + "\n", encoding="utf-8")
        assert self._proc.stdin is not None
        self._proc.stdin.write(
            f". {script} < /dev/null 2>&1\n__rc=$?; printf '\\n{SENTINEL} %s\\n' $__rc; "
            "(exit $__rc)\n"
        )
        self._proc.stdin.flush()
        return self._collect(timeout, command)

    def _collect(self, timeout: float, command: str) -> tuple[str, int]:
        deadline = time.monotonic() + timeout
        with self._ready:
            while not any(line.startswith(SENTINEL) for line in self._lines):
                if not self._ready.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"no end within {timeout}s: {command}")
            done = next(n for n, line in enumerate(self._lines) if line.startswith(SENTINEL))
            output, status = "".join(self._lines[:done]), int(self._lines[done].split()[1])
            del self._lines[: done + 1]
        return output.removesuffix("\n"), status

    def close(self) -> None:
        """End the shell."""
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def check_steps(
    session: Session,
    rewrite: Rewrite,
    all_steps: list[Step],
    settle: Callable[[], None],
    printed: dict[Step, str] | None = None,
    before: Callable[[Step], None] | None = None,
) -> list[str]:
    """Run every step in order; one message per step whose output or status differs (and,
    into `printed` when given, what each step printed, as the page would show it). `before`
    is called with each step before the shell runs it (what the harness does itself)."""
    failures: list[str] = []
    for n, step in enumerate(all_steps):
        if before is not None:
            before(step)
        output, status = session.run(rewrite.command(step.command))
        settle()
        shown = rewrite.output(output)
        if printed is not None:
            printed[step] = shown
        where = f"{step.block.where.rsplit(':', 1)[0]}:{step.line}"
        if not matches(step.expected, shown):
            failures.append(f"{where}: $ {step.command}\n--- page\n"
                            + "\n".join(step.expected) + f"\n--- printed\n{shown}\n")  # fmt: skip
        following = all_steps[n + 1].command if n + 1 < len(all_steps) else ""
        if status != 0 and following.strip() != "echo $?":
            failures.append(f"{where}: $ {step.command}\nexited {status} (show it: $ echo $?)")
    return failures
