# ruff: noqa: RUF001 (the board's words: en dash and Cyrillic letters are meant)
"""The display board's frame, drawn headless: what text went where, in both orientations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pygame
import pytest

from kiosk_ui.board import (
    BACKGROUND,
    HIGHLIGHT,
    HIGHLIGHT_ALT,
    LANDSCAPE,
    PORTRAIT,
    ROW_BG,
    BoardError,
    BoardRenderer,
)
from kiosk_ui.board_model import BoardCall, BoardView, ServiceLine
from kiosk_ui.words import Words

CLOCK = datetime(2026, 11, 23, 9, 41, tzinfo=UTC)
A042 = BoardCall("call-42", "A042", "3", "reg", called_at=1000.0)
B017 = BoardCall("call-17", "B017", "12", "pass", called_at=990.0, recall=1)


def a_view(language: str = "en", **changes: object) -> BoardView:
    fields: dict[str, object] = {
        "site_name": "City Hall — Hall B",
        "calls": (A042, B017),
        "recent": tuple(
            BoardCall(f"old-{n}", f"A0{n}", str(n % 4 + 1), "reg", 900.0) for n in range(30, 41)
        ),
        "services": (
            ServiceLine("reg", "Registrations", 7, 540),
            ServiceLine("pass", "Passports and identity cards for residents abroad", 2, 30),
            ServiceLine("pay", "Payments", 0, None),
        ),
        "ticker": "Welcome! Please keep your ticket until your number is called. " * 2,
        "language": language,
    }
    fields.update(changes)
    return BoardView(**fields)  # type: ignore[arg-type]


def texts_in(renderer: BoardRenderer, region: str) -> list[str]:
    area = renderer.regions[region]
    return [drawn.text for drawn in renderer.last_layout if area.contains(drawn.rect)]


@pytest.fixture(params=[LANDSCAPE, PORTRAIT], ids=["landscape", "portrait"])
def renderer(request: pytest.FixtureRequest) -> BoardRenderer:
    return BoardRenderer(request.param, words=Words())


def test_the_current_call_is_drawn_in_the_calls_area_and_everything_fits(
    renderer: BoardRenderer, tmp_path: Path
) -> None:
    frame = renderer.render(a_view(), now=1000.0, local_time=CLOCK)

    calls = texts_in(renderer, "calls")
    assert calls[calls.index("A042") + 1] == "→ 3"
    assert "B017" in calls and "→ 12" in calls
    assert "09:41" in texts_in(renderer, "header")
    screen = frame.get_rect()
    for drawn in renderer.last_layout:
        assert drawn.rect.w > 0 and screen.contains(drawn.rect), drawn
    pygame.image.save(frame, str(tmp_path / f"board-{renderer.size[0]}x{renderer.size[1]}.png"))
    if renderer.size == LANDSCAPE:
        pygame.image.save(frame, "/tmp/board-landscape.png")  # for a person to look at


def test_every_text_stays_inside_its_own_area(renderer: BoardRenderer) -> None:
    renderer.render(a_view(), now=1000.0, local_time=CLOCK)

    areas = renderer.regions.values()
    for drawn in renderer.last_layout:
        assert any(area.contains(drawn.rect) for area in areas), drawn


def test_the_call_area_is_drawn_not_left_as_background(renderer: BoardRenderer) -> None:
    frame = renderer.render(a_view(), now=1000.0)

    ticket = next(d.rect for d in renderer.last_layout if d.text == "A042")
    pixels = {tuple(frame.get_at((x, ticket.centery)))[:3] for x in range(ticket.x, ticket.right)}
    assert len(pixels) > 2 and BACKGROUND not in pixels


def test_recent_calls_and_waiting_services_are_shown(renderer: BoardRenderer) -> None:
    renderer.render(a_view(), now=1000.0)

    recent = texts_in(renderer, "recent")
    assert recent[0] == "Recent calls" and recent[1:3] == ["A030", "→ 3"]
    services = texts_in(renderer, "services")
    assert services[1:4] == ["Registrations", "7 waiting", "~9 min"]
    assert "< 1 min" in services and "–" in services


def test_a_long_service_name_is_shortened_with_an_ellipsis(renderer: BoardRenderer) -> None:
    renderer.render(a_view(), now=1000.0)

    long_name = next(t for t in texts_in(renderer, "services") if t.startswith("Passports"))
    assert long_name.endswith("…") or renderer.size == PORTRAIT


def pixel_behind(renderer: BoardRenderer, frame: pygame.Surface, text: str) -> tuple[int, ...]:
    """The colour of the row band just left of ``text``."""
    rect = next(d.rect for d in renderer.last_layout if d.text == text)
    return tuple(frame.get_at((rect.x - 4, rect.centery)))[:3]


def test_a_new_call_blinks_in_colour_then_settles() -> None:
    renderer = BoardRenderer(LANDSCAPE, highlight_seconds=10.0, blink_seconds=0.5)

    first = pixel_behind(renderer, renderer.render(a_view(), now=100.0), "A042")
    blink = pixel_behind(renderer, renderer.render(a_view(), now=100.6), "A042")
    assert renderer.is_highlighted(A042, 105.0)
    later = pixel_behind(renderer, renderer.render(a_view(), now=110.1), "A042")

    assert (first, blink, later) == (HIGHLIGHT, HIGHLIGHT_ALT, ROW_BG)


def test_a_recall_is_new_again_and_a_later_call_does_not_renew_the_others() -> None:
    renderer = BoardRenderer(LANDSCAPE, highlight_seconds=10.0)
    renderer.render(a_view(), now=100.0)

    recalled = BoardCall("call-42", "A042", "3", "reg", 1000.0, recall=1)
    fresh = BoardCall("call-43", "A043", "2", "reg", 1010.0)
    frame = renderer.render(a_view(calls=(fresh, recalled, B017)), now=120.0)

    assert renderer.is_highlighted(recalled, 120.0) and renderer.is_highlighted(fresh, 120.0)
    assert not renderer.is_highlighted(B017, 120.0)
    assert pixel_behind(renderer, frame, "B017") == ROW_BG


def test_the_ticker_scrolls_with_time_inside_its_strip(renderer: BoardRenderer) -> None:
    view = a_view()
    strip = renderer.regions["ticker"]
    strips = []
    for now in (0.0, 0.5, 1.0):
        frame = renderer.render(view, now=now)
        drawn = next(d for d in renderer.last_layout if d.text == view.ticker)
        assert strip.contains(drawn.rect)
        if now == 0.0:
            assert drawn.rect.x > strip.x  # it starts readable, at the left edge
        strips.append(pygame.image.tobytes(frame.subsurface(strip), "RGB"))

    assert len(set(strips)) == 3


def test_a_short_ticker_stands_still_in_the_middle(renderer: BoardRenderer) -> None:
    view = a_view(ticker="Welcome")
    rects = []
    for now in (0.0, 3.0):
        renderer.render(view, now=now)
        rects.append(next(d.rect for d in renderer.last_layout if d.text == "Welcome"))
    assert rects[0] == rects[1]
    assert abs(rects[0].centerx - renderer.regions["ticker"].centerx) <= 1


def test_no_calls_asks_people_to_wait_and_no_clock_without_a_time() -> None:
    renderer = BoardRenderer(PORTRAIT)
    renderer.render(a_view(calls=(), ticker=""), now=5.0, local_time=None)

    assert texts_in(renderer, "calls")[-1] == Words().get("board.no_calls")
    assert texts_in(renderer, "header") == ["City Hall — Hall B"]


@pytest.mark.parametrize(
    ("language", "counter_word"),
    [("pl", "Stanowisko"), ("cs", "Přepážka"), ("uk", "Вікно")],
)
def test_each_language_is_drawn_in_its_own_words(language: str, counter_word: str) -> None:
    renderer = BoardRenderer(LANDSCAPE)
    renderer.render(a_view(language), now=1.0)

    assert counter_word in texts_in(renderer, "calls")


def test_the_shipped_fonts_have_every_glyph_a_board_needs() -> None:
    renderer = BoardRenderer(LANDSCAPE)
    needed = "Okienko Přepážka Вікно → ąćęłńóśźż ĄĆĘŁŃÓŚŹŻ čďěňřšťůž ČĎĚŇŘŠŤŮŽ їєґ ЇЄҐ – …"

    assert renderer.missing_glyphs(needed) == ""
    assert renderer.missing_glyphs(needed, bold=True) == ""
    assert renderer.missing_glyphs("\ue000") == "\ue000"  # the check does find a gap


def test_a_site_may_rename_a_word() -> None:
    words = Words("pl", overrides={"pl": {"board.counter": "Okienko"}})
    renderer = BoardRenderer(LANDSCAPE, words=words)
    renderer.render(a_view("pl"), now=1.0)

    assert "Okienko" in texts_in(renderer, "calls")


def test_text_is_rendered_once_and_reused(renderer: BoardRenderer) -> None:
    view = a_view()
    for n in range(30):  # a whole blink cycle: the new calls' band shows both colours
        renderer.render(view, now=1.0 + n / 30, local_time=CLOCK)
    cached = renderer.cached_texts
    for n in range(30):
        renderer.render(view, now=2.0 + n / 30, local_time=CLOCK)

    assert renderer.cached_texts == cached


def test_it_draws_onto_a_target_of_its_size_only() -> None:
    renderer = BoardRenderer(LANDSCAPE)
    target = pygame.Surface(LANDSCAPE)

    assert renderer.render(a_view(), 1.0, target=target) is target
    with pytest.raises(ValueError):
        renderer.render(a_view(), 1.0, target=pygame.Surface(PORTRAIT))


def test_a_missing_font_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="DejaVuSans"):
        BoardRenderer(LANDSCAPE, fonts_dir=tmp_path)
