"""``entrada rules simulate`` on the shipped aquapark example, and its exit codes."""

import argparse
import json
from pathlib import Path

import pytest

from entrada.cli_rules import EXIT_INVALID, main, register

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"
RULES = str(EXAMPLES / "aquapark-rules.json")
DAY = str(EXAMPLES / "aquapark-day.jsonl")


def simulate(capsys, *argv):
    code = main(["rules", "simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def rows(out):
    return [json.loads(line) for line in out.splitlines()]


def test_register_adds_rules_simulate():
    parser = argparse.ArgumentParser(prog="entrada")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["rules", "simulate", "r.json", "i.jsonl", "--json"])
    assert (args.rules_file, args.input_file, args.json, args.lang) == (
        "r.json",
        "i.jsonl",
        True,
        "en",
    )
    assert callable(args.func)


def test_the_example_day_as_a_table(capsys):
    code, out, err = simulate(capsys, RULES, DAY)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "time",
        "uid",
        "gate",
        "action",
        "code",
        "explanation",
        "due",
        "charges",
    ]

    def row(start):
        (found,) = [line for line in lines if line.startswith(start)]
        return " ".join(found.split())

    assert row("2028-06-10 12:20  04A1B2C3") == (
        "2028-06-10 12:20 04A1B2C3 main-out tap denied.owing "
        "Overtime 14.00 PLN due — pay at the kiosk 14.00 PLN overtime 14.00 PLN"
    )
    assert row("2028-06-10 12:47  04B2C3D4") == (
        "2028-06-10 12:47 04B2C3D4 main-out tap granted "
        "Goodbye: 10.00 PLN deposit returned overtime 4.00 PLN, deposit.refund -10.00 PLN"
    )
    assert row("2028-06-10 15:40  04C3D4E5") == (
        "2028-06-10 15:40 04C3D4E5 sauna-out tap granted 30.00 PLN added to your tab stay 30.00 PLN"
    )
    assert row("2028-06-10 13:00  04C3D4E5") == (
        "2028-06-10 13:00 04C3D4E5 - post denied.tab_limit Tab limit of 100.00 PLN reached"
    )
    assert lines[-7:] == [
        "taps 34: 27 granted, 7 denied (denied.lost 1, denied.low_assurance 1, "
        "denied.min_gap 1, denied.owing 2, denied.passback 1, denied.unknown 1)",
        "postings 4: 2 granted, 2 refused (denied.low_assurance 1, denied.tab_limit 1)",
        "charged 105.50 PLN (overtime 18.00, stay 50.00, tab 37.50)",
        "paid 85.50 PLN; deposits applied 20.00 PLN, returned 10.00 PLN",
        "sold 7 for 570.00 PLN",
        "exits refused for owing: 2",
        "inside at the end: 1",
    ]


def test_the_example_day_as_json(capsys):
    code, out, _ = simulate(capsys, RULES, DAY, "--json")
    assert code == 0
    *results, last = rows(out)
    assert all(set(r) == set(results[0]) for r in results)  # one shape for every action
    by_line = {r["line"]: r for r in results}

    a_refused, a_paid, a_out = by_line[50], by_line[51], by_line[52]
    assert (a_refused["code"], a_refused["due_minor"]) == ("denied.owing", 1400)
    assert a_refused["at"] == "2028-06-10T12:20:00+02:00"
    assert a_refused["charges"][0]["params"] == {
        "concession": "adult",
        "day": "2028-06-10",
        "intervals": 2,
        "stay_minutes": 140,
        "zone": "facility",
    }
    assert (a_paid["action"], a_paid["amount_minor"], a_paid["code"]) == ("pay", 1400, None)
    assert (a_out["allowed"], a_out["due_minor"]) == (True, 0)

    timestop_exit = by_line[57]  # billed to the kiosk tap: 1 interval, not 2
    assert [(c["code"], c["amount_minor"]) for c in timestop_exit["charges"]] == [("overtime", 400)]
    assert [(c["code"], c["amount_minor"]) for c in timestop_exit["credits"]] == [
        ("deposit.refund", 1000)
    ]

    sauna = [r for r in results if r["gate"] == "sauna-out"]
    assert [(r["post_to_tab"], r["charges"][0]["amount_minor"]) for r in sauna] == [
        (True, 2000),
        (True, 3000),
    ]
    assert sauna[1]["charges"][0]["params"]["capped"] == 1
    c_refused, c_out = by_line[78], by_line[80]
    assert (c_refused["code"], c_refused["due_minor"]) == ("denied.owing", 8750)
    assert c_out["credits"] == [
        {"code": "deposit.applied", "amount_minor": 2000, "currency": "PLN", "params": {}}
    ]
    assert by_line[73]["code"] == "granted.offline" and by_line[73]["offline"]
    assert by_line[15]["text"] == "Sold pass-10 (senior) for 250.00 PLN"

    assert last == {
        "summary": {
            "currency": "PLN",
            "taps": 34,
            "granted": 27,
            "denied": {
                "denied.lost": 1,
                "denied.low_assurance": 1,
                "denied.min_gap": 1,
                "denied.owing": 2,
                "denied.passback": 1,
                "denied.unknown": 1,
            },
            "postings": 4,
            "postings_refused": {"denied.low_assurance": 1, "denied.tab_limit": 1},
            "charged_minor": 10550,
            "charged_by_code": {"overtime": 1800, "stay": 5000, "tab": 3750},
            "paid_minor": 8550,
            "sold": 7,
            "sales_minor": 57000,
            "deposit_applied_minor": 2000,
            "deposit_refunded_minor": 1000,
            "owing_refusals": 2,
            "inside_at_end": 1,
        }
    }


def test_invalid_rules_list_every_error_and_exit_2(capsys, tmp_path):
    doc = json.loads(Path(RULES).read_text(encoding="utf-8"))
    doc["site"]["currency"] = "zł"
    doc["tariffs"][0]["stay"]["facility"]["grace_minute"] = 5
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    code, out, err = simulate(capsys, str(bad), DAY)
    assert (code, out) == (EXIT_INVALID, "")
    assert "2 error(s)" in err and "site.currency:" in err
    assert "grace_minute: unknown key (did you mean 'grace_minutes'?)" in err


def test_invalid_input_lists_every_error_and_simulates_nothing(capsys, tmp_path):
    lines = Path(DAY).read_text(encoding="utf-8").splitlines()
    lines[15] = lines[15].replace('"main-in"', '"main-inn"')  # line 16
    lines[16] = lines[16].replace("09:06", "08:06")  # line 17: before line 16
    bad = tmp_path / "day.jsonl"
    bad.write_text("\n".join(lines), encoding="utf-8")
    code, out, err = simulate(capsys, RULES, str(bad), "--json")
    assert (code, out) == (EXIT_INVALID, "")
    assert "line 16: gate: no gate 'main-inn' is declared (did you mean 'main-in'?)" in err
    assert "line 17: at: 2028-06-10T08:06:00+02:00 is earlier than line 16" in err


@pytest.mark.parametrize("which", ["rules", "input"])
def test_a_missing_or_broken_file_exits_2(capsys, tmp_path, which):
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    for path, words in ((tmp_path / "nope", "cannot read"), (broken, "not valid")):
        argv = [str(path), DAY] if which == "rules" else [RULES, str(path)]
        code, out, err = simulate(capsys, *argv)
        assert (code, out) == (EXIT_INVALID, "")
        assert words in err if which == "rules" or words == "cannot read" else "not JSON" in err


def test_toml_rules(capsys, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(
        """
        [site]
        id = "hall"
        tz = "Europe/Warsaw"
        currency = "EUR"
        holidays = [2028-11-01]  # TOML dates and times read as `entrada catalog rules` reads them

        [[zones]]
        id = "hall"

        [[tariffs]]
        id = "entry"
        zones = ["hall"]
        pay_at_exit = true
        price = {prices = {adult = 1250}}
        entry_windows = [{start = 00:00:00, end = 23:00:00}]
        """,
        encoding="utf-8",
    )
    day = tmp_path / "day.jsonl"
    day.write_text(
        "\n".join(
            [
                '{"gate": "in", "zone_to": "hall", "direction": "in"}',
                '{"gate": "out", "zone_from": "hall", "direction": "out"}',
                '{"at": "2028-10-29T01:30", "sell": "04A1B2C3", "tariff": "entry"}',
                '{"at": "2028-10-29T02:30+02:00", "tap": "04A1B2C3", "gate": "in"}',
                '{"at": "2028-10-29T02:30+01:00", "tap": "04A1B2C3", "gate": "out"}',
            ]
        ),
        encoding="utf-8",
    )
    code, out, err = simulate(capsys, str(rules), str(day))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "Sold entry (adult): the price is charged at exit" in lines[1]
    # the wall clock shows 02:30 twice that night: the table adds the offset
    assert lines[2].startswith("2028-10-29 02:30 +02:00")
    assert lines[3].startswith("2028-10-29 02:30 +01:00")
    assert "12.50 EUR  entry 12.50 EUR" in lines[3]


@pytest.mark.parametrize("argv", [[], ["rules"], ["rules", "simulate", RULES]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
