"""What a fake run as ``python -m`` prints after its URL: the variables that point at it.

Lines a shell can use as they stand: ``export NAME=VALUE`` (``eval "$(grep
^export FILE)"`` sets them all) and ``# try: COMMAND`` comments. The variable
names are the ones the CLI and the library read, one per setting.
"""

from __future__ import annotations

import shlex


def variable_lines(variables: dict[str, str], tries: list[str]) -> list[str]:
    """``export`` lines for ``variables``, then one ``# try:`` line per command."""
    lines = [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    return lines + [f"# try: {command}" for command in tries]
