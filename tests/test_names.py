import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbcall.signaling.names import MAX_NAME_LENGTH, InvalidName, name_key, normalize_name


def key_of(raw: str) -> str:
    return name_key(normalize_name(raw))


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


# -- issue 12 item 7: impersonation with invisible characters and look-alikes -----------


@pytest.mark.parametrize(
    "invisible",
    [
        "\u034f",  # COMBINING GRAPHEME JOINER (default ignorable)
        "\ufe0f",  # VARIATION SELECTOR-16
        "\ufe00",  # VARIATION SELECTOR-1
        "\U000e0100",  # VARIATION SELECTOR-17
        "\u180b",  # MONGOLIAN FREE VARIATION SELECTOR ONE
        "\u180f",  # MONGOLIAN FREE VARIATION SELECTOR FOUR
        "\u17b4",  # KHMER VOWEL INHERENT AQ
        "\u17b5",  # KHMER VOWEL INHERENT AA
        "\u3164",  # HANGUL FILLER
        "\u115f",  # HANGUL CHOSEONG FILLER
    ],
)
def test_default_ignorable_code_points_are_refused(invisible: str) -> None:
    for raw in ("alice" + invisible, "al" + invisible + "ice"):
        with pytest.raises(InvalidName, match="invisible character: U\\+"):  # (U+3164 is NFKC'd to U+1160)
            normalize_name(raw)


@pytest.mark.parametrize("filler", ["\u3164", "\uffa0", "\u115f", "\u1160", "\u3164\u3164", "\u115f\u1160\uffa0"])
def test_names_of_hangul_fillers_are_refused(filler: str) -> None:
    with pytest.raises(InvalidName, match="invisible"):
        normalize_name(filler)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("b\u0585b", "mixes Armenian and Latin"),  # Armenian small oh
        ("\u13aa\u13a0min", "mixes Cherokee and Latin"),  # Cherokee A, D
        # Whole-script look-alikes of a Latin name whose key differs (see the collisions below
        # for those whose key does not): Greek ν is keyed as n, after its capital Ν.
        ("\u0395\u03bd\u03b1", "looks like one in Latin letters"),  # Greek Ενα, Latin "Eva"
        ("\u0386\u03bd\u03bd\u03b1", "looks like one in Latin letters"),  # Greek Άννα reads "Ávva": the price
        ("\u1d00lice", "U+1D00"),  # LATIN LETTER SMALL CAPITAL A
        ("alice\u0663", "mixes Arabic and Latin"),  # Arabic-Indic digit three
        ("alice\u09e7", "mixes Bengali and Latin"),  # Bengali digit one
        ("\u0985\u09e7" + "1", "digits from different"),  # Bengali letter, Bengali one, ASCII one
        ("a\u20dd", "U+20DD"),  # enclosing circle
        ("_\u0301", "U+0301"),  # a mark needs a letter or digit to sit on
        ("._-", "letter or digit"),
    ],
)
def test_look_alikes_are_refused(raw: str, why: str) -> None:
    with pytest.raises(InvalidName, match=re.escape(why)):
        normalize_name(raw)


def test_stacked_combining_marks_are_refused() -> None:
    with pytest.raises(InvalidName, match="marks"):
        normalize_name("a" + "\u0301\u0300\u0302" * 21)  # 63 accents on one letter
    with pytest.raises(InvalidName, match="marks"):
        normalize_name("zalgo" + "\u0316\u0317\u0318")  # three below
    assert normalize_name("Nguy\u1ec5n") == "Nguyễn"  # precomposed after NFKC
    assert normalize_name("e\u0323\u0302") == "ệ"  # Vietnamese: dot below + circumflex
    assert normalize_name("q\u0323\u0302") == "q\u0323\u0302"  # two marks, no precomposed form


@pytest.mark.parametrize(
    "twin",
    ["aIice", "alıce", "al1ce", "ALICE", "Alice", "ＡＬＩＣＥ", "AIICE"],
)
def test_confusable_latin_names_share_alices_key(twin: str) -> None:
    assert key_of(twin) == key_of("alice")


@pytest.mark.parametrize(
    ("twin", "original"),
    [
        ("rnary", "mary"),  # rn / m
        ("b0b", "bob"),  # digit zero / o
        ("\u041d\u043e\u0440\u0435", "Hope"),  # Cyrillic Н о р е: passes as a Cyrillic word, same key
        ("\u0412\u0435\u0440\u0430", "Bepa"),  # Вера
        ("\u0440\u0430\u0443\u0440\u0430\u04cf", "paypal"),  # all-Cyrillic раураӏ
        ("\u0420\u0410\u0423\u0420\u0410\u04c0", "PAYPAL"),  # the same in capitals
        ("\u0397\u03a1\u0391", "HPA"),  # Greek capitals ΗΡΑ
        ("\u0395\u039d\u0391", "ENA"),  # Greek ΕΝΑ: in capitals ν is N, and keyed so
    ],
)
def test_confusable_names_collide(twin: str, original: str) -> None:
    assert key_of(twin) == key_of(original)


def test_the_small_capital_is_refused_and_would_collide_anyway() -> None:
    # ᴀlice is refused as a character; "Straße" and "STRASSE" stay one user.
    assert key_of("Straße") == key_of("STRASSE") == key_of("strasse") == "strasse"


LEGITIMATE = [
    "小文111",
    "小文222",
    "José",
    "Ελένη",
    "Сергей",
    "Анна",
    "김민준",
    "Ana María",
    "alice_b",
    "o'brien",
    "user 42",
    "佐藤さくら",  # Han + Hiragana
    "山田タロウ",  # Han + Katakana
    "ユーザー",  # Katakana with the prolonged sound mark (Common)
    "佐々木",  # iteration mark
    "陳小明ㄅㄆ",  # Han + Bopomofo
    "金민준",  # Han + Hangul
    "Tanaka 太郎",  # Latin + Han is highly restrictive too
    "Nguyễn Văn",
    "لمى",  # Arabic
    "दीपिका",  # Devanagari with vowel signs
    "अमित२",  # Devanagari digit with Devanagari letters
    "ကျော်",  # Burmese: four marks on one base, only one of them stacking
    "སྒྲོལ་མ".replace("་", " "),  # Tibetan subjoined letters
    "שלום",
    "Ιωάννα",  # ω has no ASCII look-alike
    "ВЕРА",  # Вера in capitals: no refusal, its key is Latin "bepa"'s
    "Dmitriy",
    "ali",
    "bob2",
    "Eva",  # a Latin name is never refused for its Greek look-alike; that one is
    "Егор",  # reads "erop", but has that name's key
]


@pytest.mark.parametrize("raw", LEGITIMATE)
def test_legitimate_names_are_accepted_with_a_stable_key(raw: str) -> None:
    display = normalize_name(raw)
    key = name_key(display)
    assert key and key.isprintable()
    assert name_key(key) == key  # a key is its own key
    assert key_of(display) == key
    assert normalize_name(display) == display


def test_legitimate_names_do_not_collide_with_each_other() -> None:
    keys = [key_of(n) for n in LEGITIMATE]
    assert len(set(keys)) == len(keys)
    assert key_of("小文111") != key_of("小文222")


def test_keys_are_readable_skeletons() -> None:
    assert key_of("alice") == key_of("aIice") == "aiice"  # i, l, I and 1 are one letter in a key
    assert key_of("paypal") == "paypai"
    assert key_of("mary") == "rnary"
    assert key_of("José") == "josé"


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_normalize_raises_only_invalid_name_and_keys_are_idempotent(raw: str) -> None:
    try:
        display = normalize_name(raw)
    except InvalidName:
        return
    assert normalize_name(display) == display
    key = name_key(display)
    assert key.isprintable()
    assert name_key(key) == key
    assert name_key(display.casefold()) == key
    try:
        upper = normalize_name(display.upper())
    except InvalidName:
        return
    assert name_key(upper) == key


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", categories=["L", "M", "N"]), min_size=1, max_size=20))
def test_letters_marks_and_digits_never_crash(raw: str) -> None:
    try:
        display = normalize_name(raw)
    except InvalidName:
        return
    key = name_key(display)
    assert name_key(key) == key
    assert name_key(unicodedata.normalize("NFD", display)) == key
