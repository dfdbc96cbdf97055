"""User names: validation and normalisation.

Two names that a person cannot tell apart must be refused or map to the same *key*, so
one cannot impersonate the other.  The display form is what the user typed, in NFKC
(which folds full-width and other compatibility look-alikes).  A name is refused when it

- contains a default-ignorable code point (zero-width characters, bidi controls,
  variation selectors, the combining grapheme joiner, Mongolian free variation selectors,
  Khmer inherent vowels, Hangul fillers), a control, a symbol, punctuation other than
  ``_ - . @ + '``, or a phonetic letter (small capitals such as U+1D00);
- has no letter or digit, a combining mark with no letter or digit under it, more than
  :data:`MAX_MARKS` marks on one letter, or more than :data:`MAX_STACKED_MARKS` of the
  kind that pile up (non-zero combining class: accents above and below);
- mixes scripts beyond Unicode TR39's *highly restrictive* level (one script, or Latin
  with Han + Hiragana + Katakana, Han + Bopomofo or Han + Hangul; Common and Inherited
  characters go with any), or mixes digits of two numbering systems;
- is written in one non-Latin script, reads as ASCII letters (TR39 whole-script
  confusable with Latin), and its key differs from that Latin look-alike's (below).

The key (:func:`name_key`) case-folds, then maps every character to a representative of
its TR39 confusable class, case folded inside the classes too: ``aIice``, ``al1ce``,
``ALICE`` and ``al`` + dotless i + ``ce`` share ``alice``'s key, and the all-Cyrillic
look-alike of ``paypal`` has ``paypal``'s.  The server allows one connection per key, so
the second of two look-alike names gets ``name_taken``; as it keeps no name for anyone
offline, that is all the protection a look-alike needs.  The key is a skeleton, printable
but not meant for display (``alice`` -> ``aiice``).

The confusables and script data are Unicode 15.1's, from the ``confusable_homoglyphs``
package; a character that data does not know (newer than 15.1) is refused.
"""

from __future__ import annotations

import bisect
import unicodedata
from functools import lru_cache

from .confusables import NEUTRAL_SCRIPTS, unicode_data

MAX_NAME_LENGTH = 64
_MAX_RAW_LENGTH = 4 * MAX_NAME_LENGTH  # room for surrounding spaces and decomposed accents

#: Combining marks on one letter or digit: vowel signs, subjoined letters and accents
#: together (Burmese ``ကျော်`` has four) ...
MAX_MARKS = 4
#: ... of which at most this many with a non-zero combining class, the accents above and
#: below that stack (Vietnamese needs two).
MAX_STACKED_MARKS = 2

# Punctuation people really use in handles; everything else must be a letter, a digit,
# a combining mark belonging to a letter, or a single inner space.
_ALLOWED_PUNCTUATION = frozenset("_-.@+'")

# TR39 section 5.2, "highly restrictive": one script, or one of these combinations.
_HIGHLY_RESTRICTIVE = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)

# Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.1 to 17).
# Python's unicodedata has no such property; most of these are Cf or unassigned, but
# U+034F, U+115F, U+1160, U+17B4, U+17B5, U+180B-U+180F, U+3164, U+FE00-U+FE0F,
# U+FFA0 and U+E0100-U+E01EF are letters or marks that render as nothing.
_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
_IGNORABLE_STARTS = [start for start, _ in _IGNORABLE]

# Phonetic Extensions and their Supplement: IPA and Uralic small capitals, turned and
# sideways letters (TR39 identifier type "Technical", most of them).
_PHONETIC_BLOCK = (0x1D00, 0x1DBF)



class InvalidName(ValueError):
    """A user name that cannot be registered; the message says why."""


def normalize_name(raw: object) -> str:
    """Return the display form of a user name, or raise :class:`InvalidName`."""
    if not isinstance(raw, str):
        raise InvalidName("the name must be a string")
    if len(raw) > _MAX_RAW_LENGTH:
        # Before the cache: a valid name padded with kilobytes of spaces would otherwise
        # pin that much memory per cache entry.
        raise InvalidName(f"the name is longer than {MAX_NAME_LENGTH} characters")
    return _normalize(raw)


# Every forwarded message names its target: the same few names, over and over.
@lru_cache(maxsize=8192)
def _normalize(raw: str) -> str:
    name = unicodedata.normalize("NFKC", raw).strip()
    if not name:
        raise InvalidName("the name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"the name is longer than {MAX_NAME_LENGTH} characters")
    data = unicode_data()
    scripts: set[str] = set()
    zeros: set[int] = set()  # the code point of 0 in each numbering system used
    previous = ""
    on_base = False  # a letter or digit that combining marks can sit on
    marks = stacked = 0
    for char in name:
        if _is_ignorable(char):
            raise InvalidName(f"the name contains an invisible character: U+{ord(char):04X}")
        category = unicodedata.category(char)
        if char == " ":
            if previous == " ":
                raise InvalidName("the name has two spaces in a row")
            on_base = False
        elif category[0] in "LN" or category in ("Mn", "Mc"):
            script = _script(char)
            if script is None:
                raise InvalidName(f"the name contains a character this server does not know: U+{ord(char):04X}")
            if category[0] == "M":
                if not on_base:
                    raise InvalidName(f"the name has a combining mark with no letter under it: U+{ord(char):04X}")
                marks += 1
                stacked += unicodedata.combining(char) != 0
                if marks > MAX_MARKS or stacked > MAX_STACKED_MARKS:
                    raise InvalidName(
                        f"the name stacks more than {MAX_STACKED_MARKS} accents or {MAX_MARKS} marks on one letter"
                    )
            else:
                if category[0] == "L" and _is_phonetic(char):
                    raise InvalidName(f"the name contains a phonetic letter: U+{ord(char):04X}")
                if category == "Nd":
                    zeros.add(ord(char) - unicodedata.digit(char))
                on_base = True
                marks = stacked = 0
            if script not in NEUTRAL_SCRIPTS:
                scripts.add(script)
        elif char in _ALLOWED_PUNCTUATION:
            on_base = False
        else:
            raise InvalidName(f"the name contains a character that is not allowed: U+{ord(char):04X}")
        previous = char
    if not any(unicodedata.category(char)[0] in "LN" for char in name):
        raise InvalidName("the name has no letter or digit")
    if len(zeros) > 1:
        raise InvalidName("the name mixes digits from different numbering systems")
    if len(scripts) > 1 and not any(scripts <= allowed for allowed in _HIGHLY_RESTRICTIVE):
        raise InvalidName("the name mixes " + " and ".join(sorted(map(_pretty, scripts))) + " letters")
    if len(scripts) == 1 and "LATIN" not in scripts and data.has_uncaught_latin_twin(name):
        raise InvalidName("the name looks like one in Latin letters; write it in Latin letters")
    return name


@lru_cache(maxsize=8192)
def name_key(display: str) -> str:
    """The identity of an already normalised name: equal keys are the same user.

    Case-folded, then every character replaced by the representative of its confusable
    class; NFC, printable, and its own key.  Not meant for display (``alice`` -> ``aiice``).
    """
    return unicode_data().key(display)


@lru_cache(maxsize=4096)
def _script(char: str) -> str | None:
    return unicode_data().script(char)


def _pretty(script: str) -> str:
    return script.replace("_", " ").title()


def _is_ignorable(char: str) -> bool:
    code = ord(char)
    i = bisect.bisect_right(_IGNORABLE_STARTS, code) - 1
    return i >= 0 and code <= _IGNORABLE[i][1]


def _is_phonetic(char: str) -> bool:
    return _PHONETIC_BLOCK[0] <= ord(char) <= _PHONETIC_BLOCK[1] or "SMALL CAPITAL" in unicodedata.name(char, "")
