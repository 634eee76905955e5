# ruff: noqa: RUF001 (Cyrillic letters are meant)
"""The board's words and how each language phrases a call."""

from __future__ import annotations

import pytest

from kiosk_ui.words import (
    LANGUAGES,
    PAUSE,
    WORDS,
    Words,
    announcement_pieces,
    counter_pieces,
    spoken_texts,
    ticket_pieces,
)


def test_every_language_has_every_word() -> None:
    keys = set(WORDS["en"])
    for language in LANGUAGES:
        assert set(WORDS[language]) == keys, language


def test_words_fall_back_to_english_then_to_the_key() -> None:
    words = Words("pl", overrides={"pl": {"board.extra": "dodatek"}})

    assert words.get("board.counter") == "Stanowisko"
    assert words.get("board.counter", "uk") == "Вікно"
    assert words.get("board.waiting", "cs", count=4) == "čeká: 4"
    assert words.get("board.extra") == "dodatek"
    assert words.get("board.extra", "en") == "board.extra"


def test_an_unknown_board_language_is_refused() -> None:
    with pytest.raises(ValueError, match="xx"):
        Words("xx")


@pytest.mark.parametrize(
    ("ticket", "pieces"),
    [
        ("A042", ["letter_a", "digit_0", "digit_4", "digit_2"]),
        ("b7", ["letter_b", "digit_7"]),
        ("Z-10", ["letter_z", "digit_1", "digit_0"]),
        ("", []),
    ],
)
def test_a_ticket_is_read_letter_by_letter_and_digit_by_digit(
    ticket: str, pieces: list[str]
) -> None:
    assert ticket_pieces(ticket) == pieces


@pytest.mark.parametrize(
    ("label", "pieces"),
    [
        ("3", ["number_3"]),
        (" 12 ", ["number_12"]),
        ("99", ["number_99"]),
        ("100", ["digit_1", "digit_0", "digit_0"]),
        ("0", ["digit_0"]),
        ("B2", ["letter_b", "digit_2"]),
    ],
)
def test_a_counter_is_read_as_a_number_when_it_is_one(label: str, pieces: list[str]) -> None:
    assert counter_pieces(label) == pieces


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_call_is_ticket_pause_counter_word_and_number(language: str) -> None:
    assert announcement_pieces(language, "A042", "3") == [
        "letter_a",
        "digit_0",
        "digit_4",
        "digit_2",
        PAUSE,
        "word_counter",
        "number_3",
    ]


@pytest.mark.parametrize(
    ("language", "counter", "letter_a"),
    [
        ("en", "counter", '<say-as interpret-as="characters">A</say-as>'),
        ("pl", "stanowisko", '<say-as interpret-as="characters">A</say-as>'),
        ("cs", "přepážka", '<say-as interpret-as="characters">A</say-as>'),
        ("uk", "вікно", "а"),
    ],
)
def test_what_espeak_is_given_to_say(language: str, counter: str, letter_a: str) -> None:
    texts = spoken_texts(language, max_number=12)

    assert texts["word_counter"] == counter
    assert texts["letter_a"] == letter_a
    assert texts["digit_0"] == "0" and texts["number_12"] == "12"
    assert "number_13" not in texts
    assert len(texts) == 26 + 10 + 12 + 1


def test_every_piece_a_call_can_need_is_recorded() -> None:
    texts = spoken_texts("cs")
    for label in map(str, range(1, 121)):
        for piece in announcement_pieces("cs", "Z990", label):
            assert piece == PAUSE or piece in texts
