"""The error hierarchy: every message says what went wrong and what to do about it.

The CLI prints ``str(error)`` and nothing else, so the message is the whole user interface. Errors that a run
can survive carry the folder where the results written so far were kept.
"""

from __future__ import annotations

from pathlib import Path


class EvalkitError(Exception):
    """Base class; ``str()`` is the message a learner sees."""

    def __init__(self, message: str, *, fix: str | None = None, kept: Path | str | None = None):
        self.problem = message
        self.fix = fix
        self.kept = Path(kept) if kept else None
        parts = [message]
        if fix:
            parts.append(f"Fix: {fix}")
        if kept:
            parts.append(f"Results so far kept in: {kept}")
        super().__init__("\n".join(parts))


class ConfigError(EvalkitError):
    """A parameter, settings value or input file is wrong."""


class UnknownModelError(ConfigError):
    """A model name that is neither a preset, a local directory nor a hub id."""


class ContextLengthError(ConfigError):
    """Prompt and output tokens do not fit the model's context."""


class TaskFileError(ConfigError):
    """A task, table or promptfoo config file is malformed."""


class PortInUseError(EvalkitError):
    """The port for a new server is taken."""


class ServerUnreachableError(EvalkitError):
    """Nobody answers at a base URL."""


class ServerStartError(EvalkitError):
    """A vLLM server exited or timed out while starting."""


class NotEnoughMemoryError(ServerStartError):
    """A new server would not fit in the memory left beside the servers already running."""


class ServerDiedError(EvalkitError):
    """The server stopped answering during a run."""


class ToolMissingError(EvalkitError):
    """A tool (node, promptfoo, guidellm, lm-eval, vllm) is not installed."""


class ToolError(EvalkitError):
    """A tool subprocess failed."""


class RunLockedError(EvalkitError):
    """Another process holds the lock of a run folder or of the workshop job."""


class RunNotFoundError(EvalkitError):
    """A run folder that does not exist or lacks the expected results."""


class ResultFileError(RunNotFoundError):
    """A result.json that is cut short, not JSON, of another kind, or of a schema version this evalkit cannot read."""
