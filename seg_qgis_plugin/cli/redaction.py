"""No password on the terminal: while a command runs, every PostGIS target it was given is shown
with its password hidden (core.outputs.postgis.display_target) in whatever it prints, success
lines included, not only in the error lines that already use it."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Dict, Iterator


class _Redacting:
    """A text stream that writes through to `stream` with each secret replaced."""

    def __init__(self, stream, secrets: Dict[str, str]):
        self._stream, self._secrets = stream, secrets

    def write(self, text: str) -> int:
        for secret, shown in self._secrets.items():
            text = text.replace(secret, shown)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _targets(args) -> Dict[str, str]:
    from ..core.outputs.postgis import display_target, is_postgis

    values = []
    for value in vars(args).values():
        values.extend(value if isinstance(value, (list, tuple)) else [value])
    return {v: display_target(v) for v in values if is_postgis(v) and display_target(v) != v}


@contextmanager
def passwords_hidden(args) -> Iterator[None]:
    """Within the block, stdout and stderr show the PostGIS targets of `args` without passwords."""
    secrets = _targets(args)
    if not secrets:
        yield
        return
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Redacting(out, secrets), _Redacting(err, secrets)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
