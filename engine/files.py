"""Files written whole or not at all, without following links an attacker may have planted."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write` on a new temporary file beside `path` (created exclusively, so an existing
    file or link of that name is never opened), then rename it over `path`. A link at `path`
    itself is replaced, never followed. On any error nothing is left behind."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(descriptor)
    partial = Path(name)
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
