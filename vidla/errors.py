"""How the `vidla` command reports a problem the user can fix: one line `vidla COMMAND: error: MESSAGE` on
stderr (the message names the file or field and the fault), no traceback, and an exit code by kind:

    exit  meaning                                                          raised as
    0     done
    1     done, and the printed report lists problems                      (returned by the command)
          (`vidla data check`, `verify`, `probe`)
    2     bad input, to fix before a rerun: arguments, config, manifest,   VidlaError (ConfigError, ManifestError,
          a missing or unreadable file, a missing optional package         CheckpointError, ...), ValueError, OSError
    3     the run started and failed: loss diverged, too many bad clips,   RunFailed (TrainingDiverged, BadDataError,
          a checkpoint could not be written                                CheckpointWriteError)
    130   interrupted (Ctrl-C)                                             KeyboardInterrupt

Any other exception is a bug and keeps its traceback; so does a user error when VIDLA_TRACEBACK=1 is set.
"""

from __future__ import annotations


class VidlaError(Exception):
    """A problem the user can fix; its message names the file (or field) and what is wrong."""

    exit_code = 2


class RunFailed(VidlaError):
    """The run started but could not finish."""

    exit_code = 3


# what `vidla` reports as one line; the library's own checks raise ValueError / OSError subclasses too
USER_ERRORS = (VidlaError, ValueError, OSError)


def exit_code(error: BaseException) -> int:
    return error.exit_code if isinstance(error, VidlaError) else VidlaError.exit_code
