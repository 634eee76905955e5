# ruff: noqa: RUF001, RUF003 (words in Polish, Czech and Ukrainian: their letters are meant)
"""The words a display board shows and says, in English, Polish, Czech and Ukrainian.

Code names what it means by a key (``"board.counter"``); only this table turns a key into
words, so a language is added here and nowhere else. A site may replace any word through
``Words(overrides=...)`` (say "Kasa" instead of "Stanowisko").

Announcements are built from pieces, one recorded clip each (see kiosk_ui/voice_clips.py):
``letter_a`` .. ``letter_z``, ``digit_0`` .. ``digit_9``, ``number_1`` .. ``number_99``,
``word_counter`` and the language-free ``chime`` and ``pause``. A ticket is read letter
by letter and digit by digit ("A zero four two"), a counter as a number ("counter twelve").
:func:`announcement_pieces` is the phrasing; :func:`spoken_texts` is what espeak-ng is
given to record each piece.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import ascii_lowercase, digits

#: The languages a board can show and announce in.
LANGUAGES: tuple[str, ...] = ("en", "pl", "cs", "uk")
#: Words missing from a language fall back to this one.
FALLBACK = "en"
#: The highest counter number said as a number; larger ones are read digit by digit.
MAX_SPOKEN_NUMBER = 99

#: Language-free pieces, recorded once for all languages.
CHIME = "chime"
PAUSE = "pause"

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "board.now_serving": "Now serving",
        "board.ticket": "Ticket",
        "board.counter": "Counter",
        "board.recent": "Recent calls",
        "board.services": "Waiting",
        "board.waiting": "{count} waiting",
        "board.wait_minutes": "~{minutes} min",
        "board.wait_under_minute": "< 1 min",
        "board.wait_unknown": "–",
        "board.no_calls": "Please take a ticket and wait to be called",
        "voice.counter": "counter",
        "ticket.ahead": "People ahead",
        "ticket.wait": "Estimated wait",
        "ticket.minutes": "min",
        "ticket.issued": "Issued",
        "ticket.scan": "Scan to follow your turn",
        "ticket.appointment": "Appointment",
        # The ticket dispenser's touch screen (kiosk_ui/dispenser_screen.py).
        "dispenser.ask_staff": "Please ask staff for help",
        "dispenser.try_again": "Please try again",
        "dispenser.choose": "Choose a service",
        "dispenser.take_ticket": "Please take your ticket",
        "dispenser.priority": "Priority",
        "dispenser.printing": "Please wait, printing…",
        "dispenser.out_of_order": "Out of order",
        "dispenser.ticket.issued": "Your number: {number}",
        "dispenser.ticket.issued_offline": "Your number: {number}",
        "dispenser.ticket.refused.printer": "The printer is not ready",
        "dispenser.ticket.refused.print_failed": "The ticket did not print",
        "dispenser.ticket.refused.no_numbers": "No ticket can be issued now",
        "dispenser.ticket.refused.central": "No ticket could be issued",
        "dispenser.ticket.refused.busy": "Please wait, a ticket is being printed",
        "dispenser.queue.refused.range_exhausted": "No more tickets for this service today",
        "dispenser.queue.refused.day_closed": "No more tickets are issued today",
        "dispenser.ticket.refused.checkin_too_early": (
            "Too early to check in: please come back nearer your appointment time"
        ),
        "dispenser.ticket.refused.checkin_too_late": (
            "Too late to check in for this appointment: please ask staff"
        ),
        "dispenser.ticket.refused.checkin_unknown": "This code is not recognised: please ask staff",
        "dispenser.ticket.refused.checkin_used": "This appointment is already checked in",
        "dispenser.ticket.refused.checkin_closed": (
            "This appointment is no longer valid: please ask staff"
        ),
        "dispenser.ticket.refused.checkin_offline": (
            "Check-in is not possible now: please take a normal ticket or ask staff"
        ),
        "fault.printer_missing": "Printer not connected",
        "fault.printer_paper_out": "Printer out of paper",
        "fault.printer_cover_open": "Printer cover open",
        "fault.printer_offline": "Printer not responding",
        "fault.printer_paper_low": "Paper running low",
        "fault.printer_failed": "The last ticket did not print",
    },
    "pl": {
        "board.now_serving": "Zapraszamy",
        "board.ticket": "Numer",
        "board.counter": "Stanowisko",
        "board.recent": "Ostatnie wywołania",
        "board.services": "Oczekujący",
        "board.waiting": "oczekuje: {count}",
        "board.wait_minutes": "~{minutes} min",
        "board.wait_under_minute": "< 1 min",
        "board.wait_unknown": "–",
        "board.no_calls": "Proszę pobrać bilet i zaczekać na wywołanie",
        "voice.counter": "stanowisko",
        "ticket.ahead": "Osób przed Tobą",
        "ticket.wait": "Szacowany czas oczekiwania",
        "ticket.minutes": "min",
        "ticket.issued": "Wydano",
        "ticket.scan": "Zeskanuj, aby śledzić kolejkę",
        "ticket.appointment": "Wizyta umówiona",
        # The ticket dispenser's touch screen (kiosk_ui/dispenser_screen.py).
        "dispenser.ask_staff": "Prosimy zwrócić się do obsługi",
        "dispenser.try_again": "Prosimy spróbować ponownie",
        "dispenser.choose": "Wybierz sprawę",
        "dispenser.take_ticket": "Proszę odebrać bilet",
        "dispenser.priority": "Pierwszeństwo",
        "dispenser.printing": "Proszę czekać, drukowanie…",
        "dispenser.out_of_order": "Urządzenie nieczynne",
        "dispenser.ticket.issued": "Twój numer: {number}",
        "dispenser.ticket.issued_offline": "Twój numer: {number}",
        "dispenser.ticket.refused.printer": "Drukarka nie jest gotowa",
        "dispenser.ticket.refused.print_failed": "Bilet nie został wydrukowany",
        "dispenser.ticket.refused.no_numbers": "Nie można teraz wydać biletu",
        "dispenser.ticket.refused.central": "Nie udało się wydać biletu",
        "dispenser.ticket.refused.busy": "Proszę czekać, trwa drukowanie biletu",
        "dispenser.queue.refused.range_exhausted": "Bilety do tej sprawy na dziś się skończyły",
        "dispenser.queue.refused.day_closed": "Dziś bilety nie są już wydawane",
        "dispenser.ticket.refused.checkin_too_early": (
            "Za wcześnie na potwierdzenie wizyty: prosimy wrócić bliżej jej godziny"
        ),
        "dispenser.ticket.refused.checkin_too_late": (
            "Za późno na potwierdzenie tej wizyty: prosimy zwrócić się do obsługi"
        ),
        "dispenser.ticket.refused.checkin_unknown": (
            "Nie rozpoznano kodu: prosimy zwrócić się do obsługi"
        ),
        "dispenser.ticket.refused.checkin_used": "Ta wizyta jest już potwierdzona",
        "dispenser.ticket.refused.checkin_closed": (
            "Ta wizyta jest już nieaktualna: prosimy zwrócić się do obsługi"
        ),
        "dispenser.ticket.refused.checkin_offline": (
            "Nie można teraz potwierdzić wizyty: prosimy pobrać zwykły bilet lub zwrócić się "
            "do obsługi"
        ),
        "fault.printer_missing": "Drukarka niepodłączona",
        "fault.printer_paper_out": "Brak papieru w drukarce",
        "fault.printer_cover_open": "Otwarta pokrywa drukarki",
        "fault.printer_offline": "Drukarka nie odpowiada",
        "fault.printer_paper_low": "Kończy się papier",
        "fault.printer_failed": "Ostatni bilet nie został wydrukowany",
    },
    "cs": {
        "board.now_serving": "Právě voláme",
        "board.ticket": "Lístek",
        "board.counter": "Přepážka",
        "board.recent": "Poslední volání",
        "board.services": "Čekající",
        "board.waiting": "čeká: {count}",
        "board.wait_minutes": "~{minutes} min",
        "board.wait_under_minute": "< 1 min",
        "board.wait_unknown": "–",
        "board.no_calls": "Vezměte si prosím lístek a vyčkejte na vyvolání",
        "voice.counter": "přepážka",
        "ticket.ahead": "Lidí před vámi",
        "ticket.wait": "Odhadovaná doba čekání",
        "ticket.minutes": "min",
        "ticket.issued": "Vydáno",
        "ticket.scan": "Naskenujte a sledujte pořadí",
        "ticket.appointment": "Objednaná návštěva",
        # The ticket dispenser's touch screen (kiosk_ui/dispenser_screen.py).
        "dispenser.ask_staff": "Obraťte se prosím na obsluhu",
        "dispenser.try_again": "Zkuste to prosím znovu",
        "dispenser.choose": "Vyberte službu",
        "dispenser.take_ticket": "Vezměte si prosím lístek",
        "dispenser.priority": "Přednostně",
        "dispenser.printing": "Čekejte prosím, tiskne se…",
        "dispenser.out_of_order": "Mimo provoz",
        "dispenser.ticket.issued": "Vaše číslo: {number}",
        "dispenser.ticket.issued_offline": "Vaše číslo: {number}",
        "dispenser.ticket.refused.printer": "Tiskárna není připravena",
        "dispenser.ticket.refused.print_failed": "Lístek se nevytiskl",
        "dispenser.ticket.refused.no_numbers": "Lístek teď nelze vydat",
        "dispenser.ticket.refused.central": "Lístek nelze vydat",
        "dispenser.ticket.refused.busy": "Čekejte prosím, tiskne se lístek",
        "dispenser.queue.refused.range_exhausted": "Lístky na tuto službu jsou pro dnešek vydány",
        "dispenser.queue.refused.day_closed": "Dnes se již lístky nevydávají",
        "dispenser.ticket.refused.checkin_too_early": (
            "Na potvrzení příchodu je příliš brzy: přijďte prosím blíže času rezervace"
        ),
        "dispenser.ticket.refused.checkin_too_late": (
            "Na potvrzení této rezervace je příliš pozdě: obraťte se prosím na obsluhu"
        ),
        "dispenser.ticket.refused.checkin_unknown": (
            "Kód nebyl rozpoznán: obraťte se prosím na obsluhu"
        ),
        "dispenser.ticket.refused.checkin_used": "Příchod k této rezervaci je již potvrzen",
        "dispenser.ticket.refused.checkin_closed": (
            "Tato rezervace již neplatí: obraťte se prosím na obsluhu"
        ),
        "dispenser.ticket.refused.checkin_offline": (
            "Příchod teď nelze potvrdit: vezměte si prosím běžný lístek nebo se obraťte na obsluhu"
        ),
        "fault.printer_missing": "Tiskárna není připojena",
        "fault.printer_paper_out": "V tiskárně došel papír",
        "fault.printer_cover_open": "Kryt tiskárny je otevřený",
        "fault.printer_offline": "Tiskárna neodpovídá",
        "fault.printer_paper_low": "Dochází papír",
        "fault.printer_failed": "Poslední lístek se nevytiskl",
    },
    "uk": {
        "board.now_serving": "Запрошуємо",
        "board.ticket": "Талон",
        "board.counter": "Вікно",
        "board.recent": "Останні виклики",
        "board.services": "Черга",
        "board.waiting": "у черзі: {count}",
        "board.wait_minutes": "~{minutes} хв",
        "board.wait_under_minute": "< 1 хв",
        "board.wait_unknown": "–",
        "board.no_calls": "Візьміть талон і зачекайте на виклик",
        "voice.counter": "вікно",
        "ticket.ahead": "Людей перед вами",
        "ticket.wait": "Орієнтовний час очікування",
        "ticket.minutes": "хв",
        "ticket.issued": "Видано",
        "ticket.scan": "Скануйте, щоб стежити за чергою",
        "ticket.appointment": "За попереднім записом",
        # The ticket dispenser's touch screen (kiosk_ui/dispenser_screen.py).
        "dispenser.ask_staff": "Зверніться, будь ласка, до персоналу",
        "dispenser.try_again": "Спробуйте ще раз",
        "dispenser.choose": "Оберіть послугу",
        "dispenser.take_ticket": "Будь ласка, заберіть талон",
        "dispenser.priority": "Першочергово",
        "dispenser.printing": "Зачекайте, триває друк…",
        "dispenser.out_of_order": "Не працює",
        "dispenser.ticket.issued": "Ваш номер: {number}",
        "dispenser.ticket.issued_offline": "Ваш номер: {number}",
        "dispenser.ticket.refused.printer": "Принтер не готовий",
        "dispenser.ticket.refused.print_failed": "Талон не надруковано",
        "dispenser.ticket.refused.no_numbers": "Зараз неможливо видати талон",
        "dispenser.ticket.refused.central": "Не вдалося видати талон",
        "dispenser.ticket.refused.busy": "Зачекайте, друкується талон",
        "dispenser.queue.refused.range_exhausted": "Талони на цю послугу на сьогодні закінчилися",
        "dispenser.queue.refused.day_closed": "Сьогодні талони вже не видаються",
        "dispenser.ticket.refused.checkin_too_early": (
            "Зарано для реєстрації: поверніться ближче до часу вашого запису"
        ),
        "dispenser.ticket.refused.checkin_too_late": (
            "Запізно для реєстрації на цей запис: зверніться до персоналу"
        ),
        "dispenser.ticket.refused.checkin_unknown": "Код не розпізнано: зверніться до персоналу",
        "dispenser.ticket.refused.checkin_used": "Цей запис уже зареєстровано",
        "dispenser.ticket.refused.checkin_closed": (
            "Цей запис уже недійсний: зверніться до персоналу"
        ),
        "dispenser.ticket.refused.checkin_offline": (
            "Реєстрація зараз неможлива: візьміть звичайний талон або зверніться до персоналу"
        ),
        "fault.printer_missing": "Принтер не підключено",
        "fault.printer_paper_out": "У принтері закінчився папір",
        "fault.printer_cover_open": "Кришка принтера відкрита",
        "fault.printer_offline": "Принтер не відповідає",
        "fault.printer_paper_low": "Закінчується папір",
        "fault.printer_failed": "Останній талон не надруковано",
    },
}

#: How each language orders an announcement. ``{ticket}`` and ``{counter}`` expand to the
#: pieces of the ticket and the counter label; anything else is a piece name.
PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("{ticket}", PAUSE, "word_counter", "{counter}"),
    "pl": ("{ticket}", PAUSE, "word_counter", "{counter}"),
    "cs": ("{ticket}", PAUSE, "word_counter", "{counter}"),
    "uk": ("{ticket}", PAUSE, "word_counter", "{counter}"),
}

#: espeak-ng voice for each language.
VOICES: dict[str, str] = {"en": "en-gb", "pl": "pl", "cs": "cs", "uk": "uk"}

#: Latin letter names spelled out where espeak-ng would switch to English for them: a
#: Ukrainian speaker reads a ticket's "B" as "бе", not "bee". Other languages let espeak
#: name the letter itself (SSML ``say-as characters``).
# fmt: off
_UK_LETTERS = (
    "а", "бе", "це", "де", "е", "еф", "ге", "аш", "і", "йот", "ка", "ель", "ем",
    "ен", "о", "пе", "ку", "ер", "ес", "те", "у", "ве", "дубль-ве", "ікс", "ігрек", "зет",
)
# fmt: on
LETTER_NAMES: dict[str, dict[str, str]] = {
    "uk": dict(zip(ascii_lowercase, _UK_LETTERS, strict=True)),
}


class Words:
    """Looks words up by key and language, with a site's overrides on top."""

    def __init__(
        self,
        language: str = FALLBACK,
        overrides: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        if language not in WORDS:
            raise ValueError(f"unknown language {language!r}; choose one of {LANGUAGES}")
        #: The language used when a call does not name one.
        self.language = language
        self._overrides = {lang: dict(words) for lang, words in (overrides or {}).items()}

    def get(self, key: str, language: str | None = None, **params: object) -> str:
        """The words for ``key`` in ``language``, formatted with ``params``.

        Falls back to English, then to the key itself, so a missing word shows as its key
        rather than crashing a board."""
        lang = language or self.language
        for table in (self._overrides.get(lang), WORDS.get(lang), WORDS[FALLBACK]):
            if table is not None and key in table:
                text = table[key]
                return text.format(**params) if params else text
        return key


#: The words a printed ticket needs (drivers.printer.LABEL_KEYS) and their keys here.
TICKET_LABELS = ("ahead", "wait", "minutes", "issued", "scan")


def ticket_labels(language: str, words: Words | None = None) -> dict[str, str]:
    """The translated labels of a printed ticket (the printer driver holds no words)."""
    table = words or Words(language)
    return {key: table.get(f"ticket.{key}", language) for key in TICKET_LABELS}


def ticket_pieces(ticket: str) -> list[str]:
    """ "A042" -> letter_a, digit_0, digit_4, digit_2; anything else in it is not said."""
    pieces = []
    for char in ticket.lower():
        if char in digits:
            pieces.append(f"digit_{char}")
        elif char in ascii_lowercase:
            pieces.append(f"letter_{char}")
    return pieces


def counter_pieces(label: str) -> list[str]:
    """ "3" -> number_3; "12" -> number_12; "B2" or "120" -> spelled piece by piece."""
    text = label.strip()
    if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_SPOKEN_NUMBER:
        return [f"number_{int(text)}"]
    return ticket_pieces(text)


def announcement_pieces(language: str, ticket: str, counter_label: str) -> list[str]:
    """The clips that say "<ticket>, counter <label>" in ``language``, in order.

    The chime is not included: the announcer plays it first."""
    try:
        phrase = PHRASES[language]
    except KeyError:
        raise ValueError(f"unknown language {language!r}; choose one of {LANGUAGES}") from None
    pieces: list[str] = []
    for part in phrase:
        if part == "{ticket}":
            pieces.extend(ticket_pieces(ticket))
        elif part == "{counter}":
            pieces.extend(counter_pieces(counter_label))
        else:
            pieces.append(part)
    return pieces


def spoken_texts(language: str, max_number: int = MAX_SPOKEN_NUMBER) -> dict[str, str]:
    """Piece name -> the text espeak-ng reads for it (SSML where the text is a letter)."""
    if language not in VOICES:
        raise ValueError(f"unknown language {language!r}; choose one of {LANGUAGES}")
    names = LETTER_NAMES.get(language, {})
    texts: dict[str, str] = {}
    for letter in ascii_lowercase:
        texts[f"letter_{letter}"] = names.get(
            letter, f'<say-as interpret-as="characters">{letter.upper()}</say-as>'
        )
    for digit in digits:
        texts[f"digit_{digit}"] = digit
    for number in range(1, max_number + 1):
        texts[f"number_{number}"] = str(number)
    texts["word_counter"] = Words(language).get("voice.counter")
    return texts
