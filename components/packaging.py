"""Lambda code packaging: handler modules are plain files under ``components/handlers``.

Archives are built from the files on disk when the program runs (never at import time);
the engine hashes them, so an unchanged handler never causes an update.
"""

from __future__ import annotations

from pathlib import Path

import pulumi

HANDLERS_DIR = Path(__file__).resolve().parent / "handlers"


def handler_path(module: str) -> Path:
    path = HANDLERS_DIR / f"{module}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no handler module {module!r} in {HANDLERS_DIR}")
    return path


def handler_archive(module: str) -> pulumi.AssetArchive:
    """The deployment package of one handler module (``<module>.handler`` is the entry point)."""
    return pulumi.AssetArchive({f"{module}.py": pulumi.FileAsset(str(handler_path(module)))})
