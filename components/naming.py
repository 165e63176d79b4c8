"""Physical names for the few AWS resources the provider cannot autoname (a DAX cluster).

``<logical>-<6 hex>``: the suffix comes from the project, stack and logical name, so two
stacks of the same case never collide and one stack keeps its name across updates.
"""

from __future__ import annotations

import hashlib
import re

import pulumi

SUFFIX_LEN = 6


def physical_name(logical: str, *, max_length: int, lowercase: bool = True) -> str:
    seed = f"{pulumi.get_project()}/{pulumi.get_stack()}/{logical}"
    suffix = hashlib.sha256(seed.encode()).hexdigest()[:SUFFIX_LEN]
    base = logical.lower() if lowercase else logical
    base = re.sub(r"[^A-Za-z0-9-]+", "-", base).strip("-")
    if base and not base[0].isalpha():
        base = "x" + base
    base = base[: max_length - SUFFIX_LEN - 1].rstrip("-") or "x"
    return f"{base}-{suffix}"
