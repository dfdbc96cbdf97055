"""Unicode data for names: scripts and TR39 confusable classes, built once on first use.

From the ``confusable_homoglyphs`` package (Unicode 15.1's Scripts.txt and
confusables.txt).  :mod:`.names` decides what a name may be; this module answers "which
script is this character in" and "what is this text's key" (each character replaced by the
representative of its confusable class, case folded inside the classes too).
"""

from __future__ import annotations

import bisect
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})  # go with any script
_DATA_PACKAGE = "confusable_homoglyphs"


@dataclass(frozen=True)
class UnicodeData:
    script_starts: list[int]  # Scripts.txt ranges, sorted
    script_ends: list[int]
    script_names: list[str]
    key_map: dict[int, str]  # str.translate table: character -> its class representative
    # A non-Latin letter with an ASCII look-alike -> whether all its ASCII look-alikes
    # already have its key.
    latin_twins: dict[str, bool]

    def script(self, char: str) -> str | None:
        """The Script property value ("LATIN", "COMMON" ...), None for unassigned."""
        code = ord(char)
        i = bisect.bisect_right(self.script_starts, code) - 1
        return self.script_names[i] if i >= 0 and code <= self.script_ends[i] else None

    def key(self, text: str) -> str:
        folded = unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())
        return unicodedata.normalize("NFC", unicodedata.normalize("NFD", folded.translate(self.key_map)))

    def has_uncaught_latin_twin(self, name: str) -> bool:
        """Whether the (non-Latin) name reads as ASCII letters under another key.

        TR39's whole-script confusable with Latin: every letter (accents aside) has a
        look-alike made of ASCII letters.  Such a twin is harmless when the key makes it
        collide with the name (only one of the two can be online).  It is not when a
        letter's key differs from its look-alike's: Greek small nu is keyed as ``n``, as
        its capital looks like ``N``, but itself looks like ``v``, so Greek epsilon + nu
        + alpha could be online beside Latin ``Eva``.  Judged as typed and case-folded.
        """
        for form in (name, name.casefold()):
            uncaught = False
            for c in unicodedata.normalize("NFD", form):
                if unicodedata.category(c)[0] != "L" or self.script(c) in NEUTRAL_SCRIPTS:
                    continue
                caught = self.latin_twins.get(c)
                if caught is None:  # a letter with no ASCII look-alike: no twin
                    break
                uncaught = uncaught or not caught
            else:
                if uncaught:
                    return True
        return False


def _read(filename: str) -> object:
    return json.loads(resources.files(_DATA_PACKAGE).joinpath(filename).read_text(encoding="utf-8"))


# Built on first use (about 0.1 s), not at import: importing nbcall stays cheap.
@cache
def unicode_data() -> UnicodeData:
    categories = _read("categories.json")
    confusables = _read("confusables.json")
    assert isinstance(categories, dict) and isinstance(confusables, dict)
    aliases: list[str] = categories["iso_15924_aliases"]
    ranges: list[list[int]] = categories["code_points_ranges"]
    classes = _confusable_classes(confusables)
    data = UnicodeData(
        script_starts=[r[0] for r in ranges],
        script_ends=[r[1] for r in ranges],
        script_names=[aliases[r[2]] for r in ranges],
        key_map={},
        latin_twins={},
    )
    data.key_map.update(_KeyBuilder(classes, data.script).table())
    for members in classes:
        ascii_like = [m for m in members if _ascii_like(m)]
        for c in members if ascii_like else ():
            if len(c) == 1 and unicodedata.category(c)[0] == "L" and data.script(c) not in ("LATIN", None):
                data.latin_twins[c] = all(data.key(m) == data.key(c) for m in ascii_like)
    return data


def _confusable_classes(confusables: dict[str, list[dict[str, str]]]) -> list[list[str]]:
    """TR39's skeleton classes, from confusable_homoglyphs' symmetric form of confusables.txt.

    Each line of confusables.txt maps a character to a prototype; the package lists both
    directions, so the classes are the connected components (stars around a prototype).
    Only members that NFKC leaves alone are kept: nothing else can be in a display name.
    """

    def clean(text: str) -> str:  # the package keeps the LRM/RLM around right-to-left text
        return text.replace("\u200e", "").replace("\u200f", "")

    neighbours: dict[str, set[str]] = {}
    for source, targets in confusables.items():
        for target in targets:
            a, b = clean(source), clean(target["c"])
            if a and b and a != b:
                neighbours.setdefault(a, set()).add(b)
                neighbours.setdefault(b, set()).add(a)
    classes: list[list[str]] = []
    seen: set[str] = set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        component, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node not in component:
                component.add(node)
                todo.extend(neighbours[node])
        seen |= component
        members = sorted(m for m in component if unicodedata.normalize("NFKC", m) == m)
        if len(members) > 1:
            classes.append(members)
    return classes


def _ascii_like(text: str) -> bool:
    """Plain ASCII letters: what a name must look like to be taken for another in Latin."""
    return text.isascii() and text.isalpha()


def _fold(text: str) -> str:
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", text).casefold())


def _rank(char: str) -> tuple[bool, bool, bool, int]:
    """Which member of a merged class represents it: ASCII letters first, then digits."""
    return (not (char.isascii() and char.isalpha()), not char.isascii(), not char.isprintable(), ord(char))


class _KeyBuilder:
    """Merges case folding with the confusable classes into one character map.

    The key case-folds first, so case variants are one user whatever the map does; the
    map must then make each confusable pair equal *after* folding.  ``I`` and ``l`` are
    confusable and ``I`` folds to ``i``, so ``i`` and ``l`` must be one class.  Merging
    everything that way is a transitive closure that runs away through other scripts
    (Latin ``B`` ~ Greek capital beta, which folds to small beta ~ Latin sharp s, which
    folds to ``ss``):
    so two classes that already hold different ASCII letters or digits are never merged,
    except by the few pairs in confusables.txt that are ASCII on both sides (``0 O``,
    ``1 I l |``, ``m rn``).  The pairs are taken same-script first, then those with an
    ASCII side, so a foreign letter joins the Latin letter it looks like.
    """

    def __init__(self, classes: list[list[str]], script: Callable[[str], str | None]) -> None:
        self._script = script
        self._parent: dict[str, str] = {}
        self._members: dict[str, set[str]] = {}
        self._expand: dict[str, str] = {}  # a class that stands for a longer string (m -> rn)
        self._domain: set[str] = set()
        pairs = sorted(((members[0], other) for members in classes for other in members[1:]), key=self._priority)
        for a, b in pairs:
            fa, fb = _fold(a), _fold(b)
            self._domain.update(fa, fb)
            self._unify(self._resolve(fa), self._resolve(fb), a.isascii() and b.isascii())

    def table(self) -> dict[int, str]:
        table = {}
        for char in self._domain:
            resolved = self._resolve(char)
            if resolved != char:
                table[ord(char)] = resolved
        return table

    def _priority(self, pair: tuple[str, str]) -> tuple[int, tuple[str, str]]:
        scripts = [self._scripts(text) for text in pair]
        if not scripts[0] or not scripts[1] or scripts[0] == scripts[1]:
            return 0, pair
        return (1 if any(c.isascii() for c in pair[0] + pair[1]) else 2), pair

    def _scripts(self, text: str) -> frozenset[str]:
        return frozenset(s for s in map(self._script, text) if s is not None) - NEUTRAL_SCRIPTS

    def _find(self, char: str) -> str:
        while (parent := self._parent.get(char, char)) != char:
            char = parent
        return char

    def _resolve(self, text: str) -> str:
        """Each character's class representative, expanded.  An expansion is resolved when
        it is made and never holds its own class, so this ends."""
        out = []
        for char in text:
            rep = self._find(char)
            longer = self._expand.get(rep)
            out.append(rep if longer is None else self._resolve(longer))
        return "".join(out)

    def _ascii(self, rep: str) -> set[str]:
        return {c for c in self._members.get(rep, {rep}) if c.isascii() and c.isalnum()}

    def _unify(self, a: str, b: str, ascii_pair: bool) -> None:
        if a == b:
            return
        if len(a) != 1 and len(b) != 1:
            # Different strings of several characters: drop what they share around the
            # difference, and go on only if one side is left with a single character.
            head = 0
            while head < min(len(a), len(b)) and a[head] == b[head]:
                head += 1
            tail = 0
            while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
                tail += 1
            a, b = a[head : len(a) - tail], b[head : len(b) - tail]
            if not a or not b or (len(a) != 1 and len(b) != 1):
                return
        if len(a) != 1:
            a, b = b, a
        ascii_a, ascii_b = self._ascii(a), {c for c in b if c.isascii() and c.isalnum()}
        if len(b) == 1:
            ascii_b = self._ascii(b)
        if ascii_a and ascii_b and ascii_a != ascii_b and not ascii_pair:
            return
        if len(b) == 1:
            keep, drop = sorted((a, b), key=_rank)
            self._parent[drop] = keep
            self._members[keep] = self._members.get(keep, {keep}) | self._members.pop(drop, {drop})
        elif a not in b:
            self._expand[a] = b
