import re

import pytest

from nbcall.signaling.names import MAX_NAME_LENGTH, InvalidName, name_key, normalize_name


@pytest.mark.parametrize(
    ("raw", "display"),
    [
        ("小文111", "小文111"),
        ("  alice  ", "alice"),
        ("ｗｚｈ１１１", "wzh111"),  # full-width folds to ASCII (NFKC)
        ("Ana María", "Ana María"),
        ("e\u0301clair", "éclair"),  # combining accent composes
        ("o'brien.dev@lab", "o'brien.dev@lab"),
        ("Ωμέγα", "Ωμέγα"),
    ],
)
def test_valid_names_normalise(raw: str, display: str) -> None:
    assert normalize_name(raw) == display


def test_case_and_width_variants_share_one_key() -> None:
    keys = {name_key(normalize_name(n)) for n in ("Alice", "alice", "ＡＬＩＣＥ", "ALICE")}
    assert len(keys) == 1


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (None, "string"),
        (42, "string"),
        ("a" * (MAX_NAME_LENGTH + 1), "longer"),
        ("ali\u200bce", "U+200B"),  # zero-width space
        ("alice\u202e", "U+202E"),  # right-to-left override
        ("bob\x00", "U+0000"),
        ("a  b", "two spaces"),
        ("p\u0430ypal", "mixes"),  # Cyrillic a inside Latin
        ("<script>", "U+003C"),
        ("\u0301abc", "U+0301"),  # a lone combining mark cannot start a name
    ],
)
def test_invalid_names_are_refused_with_a_reason(raw: object, why: str) -> None:
    with pytest.raises(InvalidName, match=re.escape(why)):
        normalize_name(raw)


def test_padded_names_are_refused_before_they_reach_the_cache() -> None:
    from nbcall.signaling.names import _normalize

    before = _normalize.cache_info().currsize
    with pytest.raises(InvalidName, match="longer"):
        normalize_name(" " * 60_000 + "alice")
    assert _normalize.cache_info().currsize == before
    assert normalize_name(" " * 20 + "alice") == "alice"  # ordinary padding is fine
