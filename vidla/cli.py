"""The `vidla` command: a thin layer over the Python API.

Each feature area adds its subcommands through an `add_subcommands(subparsers)` function in its own
`cli` module; a subcommand sets `func(args) -> int` on its parser. A command reports a problem the user can fix
by raising it (vidla/errors.py); `main` prints it as one line and returns its exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from vidla.errors import USER_ERRORS, exit_code

# Feature areas whose subcommands are registered, in --help order. A module that is absent is skipped, so the
# command keeps working while an area is being built.
_SUBCOMMAND_MODULES = ["vidla.commands", "vidla.train.cli", "vidla.evaluate.cli", "vidla.data.cli",
                       "vidla.curate.cli", "vidla.search.cli", "vidla.distill.cli"]


def build_parser() -> argparse.ArgumentParser:
    import vidla

    parser = argparse.ArgumentParser(
        prog="vidla",
        description="VidLA video-language alignment: models, training, evaluation, curation and search.",
    )
    parser.add_argument("--version", action="version", version=f"vidla {vidla.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):  # the area itself is absent, not one of its imports
                continue
            raise
        module.add_subcommands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `key=value` overrides may come before or after options (argparse stops a positional list at an option)
    if extra and isinstance(getattr(args, "overrides", None), list) and all("=" in e for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:  # the one place a command's user error becomes a message (the table: vidla/errors.py)
        if os.environ.get("VIDLA_TRACEBACK"):
            raise
        print(f"vidla {command_name(args)}: error: {e}", file=sys.stderr)
        return exit_code(e)


def command_name(args: argparse.Namespace) -> str:
    """`train`, `curate run`, ...: a command group names its chosen subcommand in `<group>_command`."""
    return " ".join(str(value) for key, value in vars(args).items()
                    if value and (key == "command" or key.endswith("_command")))


if __name__ == "__main__":
    sys.exit(main())
