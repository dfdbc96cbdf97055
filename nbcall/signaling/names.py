"""User names: validation and normalisation.

Two names that a person cannot tell apart must map to the same *key*, so one cannot
impersonate the other.  The display form is NFKC (which folds full-width and other
compatibility look-alikes); the key additionally case-folds.  Invisible characters
(zero-width, bidi overrides, controls) and mixing Latin with Greek or Cyrillic letters
(the classic homoglyph trick: a Cyrillic "a" inside a Latin name) are refused outright.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

MAX_NAME_LENGTH = 64
_MAX_RAW_LENGTH = 4 * MAX_NAME_LENGTH  # room for surrounding spaces and decomposed accents

# Punctuation people really use in handles; everything else must be a letter, a digit,
# a combining mark belonging to a letter, or a single inner space.
_ALLOWED_PUNCTUATION = frozenset("_-.@+'")
_HOMOGLYPH_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC")


class InvalidName(ValueError):
    """A user name that cannot be registered; the message says why."""


def _script_of(char: str) -> str | None:
    name = unicodedata.name(char, "")
    for script in _HOMOGLYPH_SCRIPTS:
        if name.startswith(script):
            return script
    return None


def normalize_name(raw: object) -> str:
    """Return the display form of a user name, or raise :class:`InvalidName`."""
    if not isinstance(raw, str):
        raise InvalidName("the name must be a string")
    if len(raw) > _MAX_RAW_LENGTH:
        # Before the cache: a valid name padded with kilobytes of spaces would otherwise
        # pin that much memory per cache entry.
        raise InvalidName(f"the name is longer than {MAX_NAME_LENGTH} characters")
    return _normalize(raw)


# Every relayed message names its target: the same few names, over and over.
@lru_cache(maxsize=8192)
def _normalize(raw: str) -> str:
    name = unicodedata.normalize("NFKC", raw).strip()
    if not name:
        raise InvalidName("the name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"the name is longer than {MAX_NAME_LENGTH} characters")
    scripts: set[str] = set()
    previous = ""
    for char in name:
        category = unicodedata.category(char)
        if char == " ":
            if previous == " ":
                raise InvalidName("the name has two spaces in a row")
        elif category[0] in "LN" or (category[0] == "M" and previous not in ("", " ")):
            script = _script_of(char) if category[0] == "L" else None
            if script:
                scripts.add(script)
        elif char not in _ALLOWED_PUNCTUATION:
            raise InvalidName(f"the name contains a character that is not allowed: U+{ord(char):04X}")
        previous = char
    if len(scripts) > 1:
        raise InvalidName("the name mixes " + " and ".join(sorted(s.title() for s in scripts)) + " letters")
    return name


@lru_cache(maxsize=8192)
def name_key(display: str) -> str:
    """The identity of an already normalised name: equal keys are the same user."""
    return display.casefold()
