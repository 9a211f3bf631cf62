"""Logging set-up: one format per output, for our records and for every library's.

Off a TTY every line is one JSON object; on a TTY lines are readable, coloured. structlog's
records and those of the stdlib loggers of FastStream, uvicorn, asyncio... go through the same
processors (structlog's `ProcessorFormatter` on the root logger's only handler of ours) into a
`shared.log_sink` sink, which never blocks the caller nor raises into it (a dead pipe on stderr
must not make a service unkillable).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

import structlog
from structlog.stdlib import ProcessorFormatter

from shared.log_sink import Sink, sink_for
from shared.settings import Settings

#: The interactive hints FastStream and uvicorn log at start; a runbus process is stopped by
#: its supervisor or a signal, and a log file is read later, so they only mislead.
CTRL_C_HINT = re.compile(r"\s*(?:To exit, press CTRL\+C|\(Press CTRL\+C to quit\))")


class SinkHandler(logging.Handler):
    """The root logger's handler: formats a record and hands the line to a sink."""

    def __init__(self, sink: Sink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        """Format and enqueue (the sink neither blocks nor raises)."""
        try:
            self.sink.write(self.format(record) + "\n")
        except Exception:  # a record that cannot be formatted: logging's own report
            self.handleError(record)

    def close(self) -> None:
        """Write what is queued, then release the sink."""
        self.sink.close()
        super().close()


def drop_ctrl_c_hint(record: logging.LogRecord) -> bool:
    """A handler filter: remove `CTRL_C_HINT` from a library's message, keep the record."""
    if isinstance(record.msg, str) and "CTRL+C" in record.msg:
        record.msg = CTRL_C_HINT.sub("", record.msg)
    return True


def _processors() -> list[structlog.typing.Processor]:
    """What every record gets, structlog's and the stdlib's alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # A plain string: the console renderer would otherwise show local variables (secrets).
        structlog.processors.format_exc_info,
    ]


def _renderer(settings: Settings, tty: bool) -> structlog.typing.Processor:
    as_json = not tty if settings.log_json is None else settings.log_json
    if as_json:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=tty)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route structlog and the stdlib root logger to `stream` (stderr), once per process."""
    out = sys.stderr if stream is None else stream
    level = logging.getLevelName(settings.log_level.upper())
    shared = _processors()
    structlog.configure(
        processors=[*shared, ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = SinkHandler(sink_for(out))
    handler.setFormatter(
        ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                ProcessorFormatter.remove_processors_meta,
                _renderer(settings, _isatty(out)),
            ],
        )
    )
    handler.addFilter(drop_ctrl_c_hint)
    handler.setLevel(level)  # libraries set their own loggers' levels; the output's is ours
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, SinkHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)


def library_logger(name: str) -> logging.Logger:
    """A library's stdlib logger without its own handlers, so its records reach ours.

    FastStream gives its loggers a coloured handler on stdout/stderr and stops propagation;
    passing this logger to it instead keeps one format per output.
    """
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    return logger


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A named structlog logger."""
    return structlog.get_logger(name)  # type: ignore[no-any-return]
