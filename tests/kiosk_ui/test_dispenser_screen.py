"""The dispenser's touch screen, drawn headless: what text went where, which touch presses
which button, and what the banner and the out-of-order panel say."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pygame
import pytest

from entrada.codes import Fault, TicketOutcome
from kiosk_ui.dispenser_model import DispenserView, LastOutcome, ServiceButton
from kiosk_ui.dispenser_screen import (
    BLOCKING_FAULTS,
    BUTTON_BG,
    DISABLED_BG,
    LANDSCAPE,
    NOTICE_FAULTS,
    OVERLAY_BG,
    PORTRAIT,
    SMALL,
    DispenserScreen,
    ScreenError,
)
from kiosk_ui.words import LANGUAGES, WORDS, Words

BUTTONS = (
    ServiceButton("b1", "reg", "Registrations"),
    ServiceButton("b2", "pass", "Passports and identity cards for residents abroad"),
    ServiceButton("b3", "pay", "Payments"),
    ServiceButton("b4", "reg", "Registrations", priority=True),
)
WAITING = {"reg": (7, 540), "pass": (2, 30)}
SIZES = [PORTRAIT, LANDSCAPE, SMALL]


def a_view(**changes: object) -> DispenserView:
    fields: dict[str, object] = {"services": WAITING}
    fields.update(changes)
    return DispenserView(**fields)  # type: ignore[arg-type]


def issued(number: str = "A042", at: float = 100.0) -> LastOutcome:
    return LastOutcome(TicketOutcome.ISSUED, {"service": "reg", "number": number}, at)


def texts_in(screen: DispenserScreen, area: pygame.Rect) -> list[str]:
    return [drawn.text for drawn in screen.last_layout if area.contains(drawn.rect)]


def banner(screen: DispenserScreen) -> list[str]:
    return texts_in(screen, screen.regions["banner"])


@pytest.fixture(params=SIZES, ids=["portrait", "landscape", "small"])
def screen(request: pytest.FixtureRequest) -> DispenserScreen:
    return DispenserScreen(request.param, Words(), BUTTONS)


# ------------------------------------------------------------------ layout


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_inside_the_screen_and_its_own_area(
    screen: DispenserScreen, language: str, tmp_path: Path
) -> None:
    views = [
        a_view(outcome=issued(), faults={Fault.PRINTER_PAPER_LOW}, language=language),
        a_view(
            outcome=LastOutcome(TicketOutcome.PRINTER_NOT_READY, {}, 100.0),
            faults={Fault.PRINTER_PAPER_OUT, Fault.PRINTER_COVER_OPEN, Fault.PRINTER_FAILED},
            language=language,
        ),
    ]
    for n, view in enumerate(views):
        frame = screen.render(view, now=101.0)

        areas = [*screen.regions.values(), *screen.button_rects.values()]
        if screen.overlay is not None:
            areas.append(screen.overlay)
        for drawn in screen.last_layout:
            assert drawn.rect.w > 0 and frame.get_rect().contains(drawn.rect), drawn
            assert any(area.contains(drawn.rect) for area in areas), drawn
        pygame.image.save(frame, str(tmp_path / f"dispenser-{language}-{n}.png"))


def test_each_button_shows_its_name_and_its_queue(screen: DispenserScreen) -> None:
    screen.render(a_view(), now=1.0)

    rects = screen.button_rects
    assert texts_in(screen, rects["b1"]) == ["7 waiting · ~9 min", "Registrations"]
    assert texts_in(screen, rects["b2"])[0] == "2 waiting · < 1 min"
    assert texts_in(screen, rects["b3"]) == ["Payments"]  # no queue known: no numbers
    assert texts_in(screen, rects["b4"])[0] == "Priority · 7 waiting · ~9 min"
    assert texts_in(screen, screen.regions["header"]) == ["Choose a service"]


def test_a_long_service_name_is_shortened_not_left_out() -> None:
    screen = DispenserScreen(SMALL, Words(), BUTTONS)
    screen.render(a_view(), now=1.0)

    name = texts_in(screen, screen.button_rects["b2"])[1]
    assert name.startswith("Passports") and name.endswith("…")


def test_central_names_the_services_when_it_knows_them(screen: DispenserScreen) -> None:
    screen.render(a_view(names={"pay": "Cashier"}), now=1.0)

    assert texts_in(screen, screen.button_rects["b3"]) == ["Cashier"]


@pytest.mark.parametrize("size", SIZES, ids=["portrait", "landscape", "small"])
@pytest.mark.parametrize("count", range(1, 9))
def test_any_number_of_buttons_fits_the_button_area_without_overlapping(
    size: tuple[int, int], count: int
) -> None:
    buttons = [ServiceButton(f"b{n}", f"s{n}", f"Service {n}") for n in range(count)]
    screen = DispenserScreen(size, Words(), buttons)

    rects = list(screen.button_rects.values())
    assert all(screen.regions["buttons"].contains(rect) for rect in rects)
    assert all(rect.w >= rect.h > 0 for rect in rects)
    assert not any(a.colliderect(b) for a, b in combinations(rects, 2))


# ------------------------------------------------------------------ touches


def test_the_centre_of_each_button_presses_it(screen: DispenserScreen) -> None:
    assert screen.hit(screen.button_rects["b1"].center) is None  # nothing shown yet
    screen.render(a_view(), now=1.0)

    for name, rect in screen.button_rects.items():
        assert screen.hit(rect.center) == name
    assert screen.hit(screen.regions["header"].center) is None
    assert screen.hit(screen.regions["banner"].center) is None
    assert screen.hit((-5, 10)) is None


def test_a_click_and_a_touch_press_once_each(screen: DispenserScreen) -> None:
    screen.render(a_view(), now=1.0)
    rect = screen.button_rects["b3"]
    width, height = screen.size

    def event(kind: int, **attrs: object) -> pygame.event.Event:
        return pygame.event.Event(kind, attrs)

    click = event(pygame.MOUSEBUTTONDOWN, pos=rect.center, button=1, touch=False)
    finger = event(pygame.FINGERDOWN, x=rect.centerx / width, y=rect.centery / height, finger_id=0)
    from_touch = event(pygame.MOUSEBUTTONDOWN, pos=rect.center, button=1, touch=True)
    right = event(pygame.MOUSEBUTTONDOWN, pos=rect.center, button=3, touch=False)
    release = event(pygame.MOUSEBUTTONUP, pos=rect.center, button=1, touch=False)

    assert screen.hit_event(click) == "b3"
    assert screen.hit_event(finger) == "b3"
    assert [screen.hit_event(e) for e in (from_touch, right, release)] == [None, None, None]
    corner = event(pygame.FINGERDOWN, x=1.0, y=1.0, finger_id=0)
    assert screen.hit_event(corner) is None  # the footer, not past the edge


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize("fault", BLOCKING_FAULTS)
def test_a_printer_that_cannot_print_greys_the_buttons_out(
    screen: DispenserScreen, fault: str
) -> None:
    frame = screen.render(a_view(faults=frozenset({fault})), now=1.0)

    overlay = screen.overlay
    assert not screen.pressable and overlay is not None
    for rect in screen.button_rects.values():
        assert screen.hit(rect.center) is None
        face = OVERLAY_BG if overlay.colliderect(rect) else DISABLED_BG
        assert tuple(frame.get_at((rect.x + 2, rect.y + 2)))[:3] == face
    assert texts_in(screen, overlay) == [
        "Out of order",
        Words().get(fault),
        "Please ask staff for help",
    ]
    half_covered = [d for d in screen.last_layout if overlay.colliderect(d.rect)]
    assert all(overlay.contains(d.rect) for d in half_covered)  # words under it are not drawn


def test_the_buttons_come_back_with_the_paper(screen: DispenserScreen) -> None:
    screen.render(a_view(faults=frozenset({Fault.PRINTER_PAPER_OUT})), now=1.0)
    frame = screen.render(a_view(), now=2.0)

    rect = screen.button_rects["b2"]
    assert screen.pressable and screen.overlay is None
    assert screen.hit(rect.center) == "b2"
    assert tuple(frame.get_at((rect.x + 2, rect.y + 2)))[:3] == BUTTON_BG


def test_paper_running_low_is_a_note_and_the_buttons_still_work(
    screen: DispenserScreen,
) -> None:
    faults = frozenset({Fault.PRINTER_PAPER_LOW, Fault.PRINTER_FAILED, Fault.STORE_REBUILT})
    screen.render(a_view(faults=faults), now=1.0)

    assert screen.pressable and screen.hit(screen.button_rects["b1"].center) == "b1"
    footer = texts_in(screen, screen.regions["footer"])
    assert footer == ["Paper running low · The last ticket did not print"]


# ------------------------------------------------------------------ the banner


@pytest.mark.parametrize("code", [TicketOutcome.ISSUED, TicketOutcome.ISSUED_OFFLINE])
def test_an_issued_ticket_shows_its_number(screen: DispenserScreen, code: str) -> None:
    outcome = LastOutcome(code, {"service": "reg", "number": "B107"}, at=50.0)
    screen.render(a_view(outcome=outcome), now=51.0)

    assert banner(screen) == ["Please take your ticket", "Your number: B107"]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("code", list(TicketOutcome))
def test_each_outcome_is_shown_in_the_screens_language(code: str, language: str) -> None:
    screen = DispenserScreen(SMALL, Words(), BUTTONS)
    outcome = LastOutcome(code, {"service": "reg", "number": "A042"}, at=10.0)
    screen.render(a_view(outcome=outcome, language=language), now=10.5)

    words = Words()
    expected = words.get(f"dispenser.{code}", language, number="A042")
    assert expected != f"dispenser.{code}" and expected in banner(screen)
    assert all(text.isprintable() and "{" not in text for text in banner(screen))


def test_a_printer_refusal_names_the_printers_fault(screen: DispenserScreen) -> None:
    outcome = LastOutcome(TicketOutcome.PRINTER_NOT_READY, {"service": "reg"}, at=10.0)
    screen.render(a_view(outcome=outcome, faults={Fault.PRINTER_PAPER_OUT}), now=11.0)

    assert banner(screen) == ["Please ask staff for help", "Printer out of paper"]


@pytest.mark.parametrize(
    ("central_code", "shown"),
    [
        ("queue.refused.range_exhausted", "No more tickets for this service today"),
        ("queue.refused.day_closed", "No more tickets are issued today"),
        ("queue.refused.something_new", "No ticket could be issued"),
    ],
)
def test_a_central_refusal_says_why_when_there_are_words_for_it(
    screen: DispenserScreen, central_code: str, shown: str
) -> None:
    outcome = LastOutcome(TicketOutcome.REFUSED, {"service": "reg", "code": central_code}, 10.0)
    screen.render(a_view(outcome=outcome), now=11.0)

    assert banner(screen) == ["Please ask staff for help", shown]


def test_the_banner_clears_after_its_time_and_printing_shows_at_once() -> None:
    screen = DispenserScreen(PORTRAIT, Words(), BUTTONS, banner_seconds=5.0)

    screen.render(a_view(outcome=issued(at=100.0)), now=104.9)
    assert "Your number: A042" in banner(screen)
    screen.render(a_view(outcome=issued(at=100.0)), now=105.0)
    assert banner(screen) == []
    screen.render(a_view(outcome=issued(at=100.0), busy=True), now=101.0)
    assert banner(screen) == ["Please wait, printing…"]


# ------------------------------------------------------------------ words, fonts


def test_every_outcome_and_printer_fault_has_words_in_every_language() -> None:
    printer_faults = [f for f in Fault if f.value.startswith("fault.printer_")]
    keys = [f"dispenser.{code}" for code in TicketOutcome] + printer_faults
    assert set(printer_faults) == set(BLOCKING_FAULTS) | set(NOTICE_FAULTS)
    for language in LANGUAGES:
        assert [k for k in keys if k not in WORDS[language]] == [], language


@pytest.mark.parametrize("language", ["pl", "cs", "uk"])
def test_the_shipped_fonts_have_every_glyph_of_the_dispensers_words(language: str) -> None:
    screen = DispenserScreen(LANDSCAPE, Words(), BUTTONS)
    shown = [
        text.format(count=12, minutes=9, number="A042")
        for key, text in WORDS[language].items()
        if key.startswith(("dispenser.", "fault.printer_", "board.wait"))
    ]
    text = " · ".join(shown)

    assert screen.missing_glyphs(text) == ""
    assert screen.missing_glyphs(text, bold=True) == ""
    assert screen.missing_glyphs("\ue000") == "\ue000"  # the check does find a gap


# ------------------------------------------------------------------ the machinery


def test_text_is_rendered_once_and_reused(screen: DispenserScreen) -> None:
    views = [a_view(outcome=issued(at=1.0)), a_view(busy=True), a_view()]
    for n in range(3):
        for view in views:
            screen.render(view, now=1.0 + n)
        if n == 0:
            cached = screen.cached_texts

    assert screen.cached_texts == cached


def test_it_draws_onto_a_target_of_its_size_only() -> None:
    screen = DispenserScreen(SMALL, Words(), BUTTONS)
    target = pygame.Surface(SMALL)

    assert screen.render(a_view(), 1.0, target=target) is target
    with pytest.raises(ValueError, match="800"):
        screen.render(a_view(), 1.0, target=pygame.Surface(PORTRAIT))


def test_buttons_must_be_given_once_each(tmp_path: Path) -> None:
    with pytest.raises(ScreenError, match="at least one"):
        DispenserScreen(SMALL, Words(), [])
    with pytest.raises(ScreenError, match="twice"):
        DispenserScreen(SMALL, Words(), [BUTTONS[0], BUTTONS[0]])
    with pytest.raises(ScreenError, match="DejaVuSans"):
        DispenserScreen(SMALL, Words(), BUTTONS, fonts_dir=tmp_path)
