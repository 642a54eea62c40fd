"""Prompt templates live in ``prompts/*.md`` as files with a version in their front matter.

The prompt version is part of every recording key and of ``meta.prompt_version``; it is
the declared version plus a short hash of the file's text, so editing a prompt without
bumping the version still changes the key and stale recordings fail loudly under replay.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from service.config import PROJECT_ROOT
from service.errors import ConfigError

import os

# REPORTSUM_PROMPTS points at another prompt set (e.g. a candidate to compare with eval).
PROMPTS_DIR = Path(os.environ.get("REPORTSUM_PROMPTS") or PROJECT_ROOT / "prompts")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str


@cache
def load(name: str, directory: Path = PROMPTS_DIR) -> Prompt:
    path = directory / f"{name}.md"
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"prompt file {path} is missing (run reportsum from a checkout: pip install -e .)") from None
    m = re.match(r"^---\n(.*?)\n---\n", raw, re.S)
    declared = re.search(r"version:\s*(\S+)", m.group(1)).group(1) if m else name
    body = raw[m.end() :] if m else raw
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    return Prompt(name=name, version=f"{declared}+{digest}", text=body.strip())


PROMPT_NAMES = ("classify", "context", "overview")


def prompt_version() -> str:
    """The version of the whole prompt set (part of the digest cache key)."""
    return "+".join(load(name).version for name in PROMPT_NAMES)


PROMPT_VERSION = prompt_version()
