"""Config documents against the real device and central schemas."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from central.settings import CentralConfig
from controller.settings import DeviceConfig
from entrada import config
from entrada.config import MASK, Section
from entrada.errors import ConfigError

MINIMAL = """
[device]
id = "gate-1"
site = "pool"
role = "gate"

[drivers]
rfid = "sim"
relay = "sim"
indicator = "sim"
"""
CENTRAL = '[central]\nsite = "pool"\n'


def errors(text: str, model: type[Section] = DeviceConfig) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config.loads(text, model)
    return info.value.errors


def one_error(text: str) -> str:
    (only,) = errors(text)
    return only


# ------------------------------------------------------------------------------ load


def test_minimal_device_config_loads_with_defaults(tmp_path):
    path = tmp_path / "device.toml"
    path.write_text(MINIMAL)

    cfg = config.load(path, DeviceConfig)

    assert (cfg.device.id, cfg.device.site, cfg.drivers.rfid) == ("gate-1", "pool", "sim")
    assert cfg.device.data_dir == Path("/var/lib/entrada")
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.password) == ("127.0.0.1", 1883, None)
    assert (cfg.outbox.batch_size, cfg.gate.debounce, cfg.log.level) == (200, 2.0, "INFO")
    assert (cfg.drivers.buttons, cfg.drivers.gpio.relay_pin) == ("none", 17)
    assert (cfg.drivers.rotation, cfg.drivers.sim.auto_rotate) == ("none", None)
    assert (cfg.gate.rotation_timeout, cfg.drivers.gpio.rotation_pin) == (8.0, 24)


def test_minimal_central_config_loads_with_defaults():
    cfg = config.loads(CENTRAL, CentralConfig)

    assert (cfg.central.site, cfg.central.client_id, cfg.ingest.synchronous) == (
        "pool",
        "central",
        "FULL",
    )


def test_every_error_is_reported_at_once():
    text = MINIMAL.replace('id = "gate-1"', 'id = "no/slash"') + (
        "[mqtt]\nport = 0\nkeepalive = 1\nprot = 3\n[gate]\ndirection = 'up'\n[bogus]\n"
    )

    found = errors(text)

    assert len(found) == 6
    for where in (
        "device.id",
        "mqtt.port",
        "mqtt.keepalive",
        "mqtt.prot",
        "gate.direction",
        "bogus",
    ):
        assert any(e.startswith(f"{where}: ") for e in found), where


def test_config_error_message_lists_source_and_count(tmp_path):
    path = tmp_path / "device.toml"
    path.write_text(MINIMAL + "[mqtt]\nport = 0\nprot = 1\n")

    with pytest.raises(ConfigError) as info:
        config.load(path, DeviceConfig)

    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: 2 config error(s):\n  - ")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[mqtt]\nprot = 1\n", "mqtt.prot: unknown key (did you mean 'port'?)"),
        (
            "[drivers.gpio]\nrelay_pn = 3\n",
            "drivers.gpio.relay_pn: unknown key (did you mean 'relay_pin'?)",
        ),
        (
            "[drivers.mfrc522]\nreset_pn = 3\n",
            "drivers.mfrc522.reset_pn: unknown key (did you mean 'reset_pin'?)",
        ),
        (
            "[drivers.sim]\nauto_rotat = 1.0\n",
            "drivers.sim.auto_rotat: unknown key (did you mean 'auto_rotate'?)",
        ),
        ("[mqt]\nport = 1\n", "mqt: unknown key (did you mean 'mqtt'?)"),
        (
            "[zzz]\n",
            "zzz: unknown key (known keys: device, mqtt, outbox, gate, presence, dispenser, "
            "display, drivers, simtime, log)",
        ),
    ],
)
def test_unknown_keys_are_errors_with_a_hint(extra, expected):
    assert one_error(MINIMAL + extra) == expected


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("[mqtt]\nport = 0\n", "mqtt.port"),
        ("[mqtt]\nport = 65536\n", "mqtt.port"),
        ("[mqtt]\nkeepalive = 4\n", "mqtt.keepalive"),
        ("[mqtt]\nreconnect_min = 0.01\n", "mqtt.reconnect_min"),
        ("[outbox]\nbatch_size = 1001\n", "outbox.batch_size"),
        ("[gate]\nrelay_pulse = 31.0\n", "gate.relay_pulse"),
        ("[gate]\ndebounce = -0.1\n", "gate.debounce"),
        ("[drivers.gpio]\nrelay_pin = 28\n", "drivers.gpio.relay_pin"),
        ("[drivers.gpio]\ngreen_pin = -1\n", "drivers.gpio.green_pin"),
        ("[drivers.gpio]\nrotation_pin = 28\n", "drivers.gpio.rotation_pin"),
        ("[drivers.gpio]\nrotation_bounce = 2.5\n", "drivers.gpio.rotation_bounce"),
        ("[drivers.sim]\nauto_rotate = -1.0\n", "drivers.sim.auto_rotate"),
        ("[gate]\nrotation_timeout = 0.05\n", "gate.rotation_timeout"),
        ("[drivers.mfrc522]\nspi_speed_hz = 1\n", "drivers.mfrc522.spi_speed_hz"),
    ],
)
def test_out_of_bounds_values_are_errors(extra, where):
    assert one_error(MINIMAL + extra).startswith(f"{where}: Input should be")


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("[mqtt]\nhost = 5\n", "mqtt.host"),
        ("[mqtt]\nport = [1883]\n", "mqtt.port"),
        ("[mqtt]\nport = {a = 1}\n", "mqtt.port"),
        ("[mqtt]\nport = 1979-05-27\n", "mqtt.port"),
        ("[gate]\ndirection = 1\n", "gate.direction"),
        ("[drivers.sim]\nbuttons = 'open'\n", "drivers.sim.buttons"),
        ("mqtt = 5\n", "mqtt"),
    ],
)
def test_wrong_types_are_errors(extra, where):
    text = extra + MINIMAL if extra.startswith("mqtt =") else MINIMAL + extra

    assert one_error(text).startswith(f"{where}: ")


ROTATING = MINIMAL.replace('indicator = "sim"\n', 'indicator = "sim"\nrotation = "sim"\n')


@pytest.mark.parametrize(
    ("base", "ok"),
    [
        pytest.param(ROTATING, True, id="sim-rotation-sim-relay"),
        pytest.param(MINIMAL, False, id="no-rotation-sensor"),
        pytest.param(ROTATING.replace('relay = "sim"', 'relay = "gpio"'), False, id="gpio-relay"),
    ],
)
def test_auto_rotate_needs_a_simulated_turnstile_and_relay(base, ok):
    text = base + "[drivers.sim]\nauto_rotate = 0.5\n"
    if ok:
        assert config.loads(text, DeviceConfig).drivers.sim.auto_rotate == 0.5
    else:
        assert one_error(text) == (
            'drivers: Value error, drivers.sim.auto_rotate needs rotation = "sim" and '
            'relay = "sim" (the simulated turnstile turns when the simulated relay pulses)'
        )


def bug(reason: str, extra: str) -> object:
    """A case that once was a bug (now fixed): kept as a regression test."""
    return pytest.param(extra, id=reason)


@pytest.mark.parametrize(
    "extra",
    [
        bug("Section is lax: a numeric string is coerced to int", '[mqtt]\nport = "1883"\n'),
        bug("Section is lax: a float is coerced to int", "[mqtt]\nkeepalive = 15.0\n"),
        bug(
            "Section is lax: 'yes' is coerced to bool",
            '[drivers.gpio]\nrelay_active_high = "yes"\n',
        ),
        bug("Section is lax: 1 is coerced to bool", "[drivers.gpio]\nrelay_active_high = 1\n"),
        bug(
            "Section is lax: a string is coerced to int in a dict",
            '[drivers.gpio]\nbuttons = {open = "5"}\n',
        ),
    ],
)
def test_a_value_of_the_wrong_kind_is_not_coerced(extra):
    assert len(errors(MINIMAL + extra)) == 1


def test_an_invalid_password_is_not_echoed_in_the_error():
    assert "12345678" not in one_error(MINIMAL + "[mqtt]\npassword = 12345678\n")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"[device\nid = 1\n", "not valid TOML: "),
        (b"a = 1\na = 2\n", "not valid TOML: "),
        (b'[device]\nid = "gate-\xff"\n', "not UTF-8: "),
    ],
)
def test_unreadable_documents_are_one_config_error(tmp_path, raw, expected):
    path = tmp_path / "device.toml"
    path.write_bytes(raw)

    with pytest.raises(ConfigError) as info:
        config.load(path, DeviceConfig)

    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith(expected)


def test_missing_file_is_a_config_error(tmp_path):
    path = tmp_path / "nope.toml"

    with pytest.raises(ConfigError) as info:
        config.load(path, DeviceConfig)

    assert info.value.errors == ["cannot read config: No such file or directory"]
    assert info.value.source == str(path)


# ------------------------------------------------------------------------------ show

FULL = (
    MINIMAL
    + """
[mqtt]
username = "gate"
password = "s3cret pass"
tls_ca = "/etc/entrada/ca.pem"

[drivers.gpio]
buttons = {open = 5, close = 6}
green_pin = 4
"""
)


def test_show_masks_the_password_and_fills_defaults():
    cfg = config.loads(FULL, DeviceConfig)

    shown = tomllib.loads(config.show(cfg))

    assert shown["mqtt"]["password"] == MASK
    assert "s3cret" not in config.show(cfg)
    assert shown["outbox"]["batch_size"] == 200
    assert shown["device"]["data_dir"] == "/var/lib/entrada"


def test_show_unmasked_round_trips():
    cfg = config.loads(FULL, DeviceConfig)

    again = config.loads(config.show(cfg, mask=False), DeviceConfig)

    assert again == cfg
    assert again.mqtt.password == SecretStr("s3cret pass")


def test_show_round_trips_the_central_config():
    cfg = config.loads(CENTRAL + '[mqtt]\npassword = "x"\n', CentralConfig)

    assert config.loads(config.show(cfg, mask=False), CentralConfig) == cfg


# ------------------------------------------------------------------------- reference


def options(model: type[Section], prefix: str = "") -> list[tuple[str, str]]:
    """Every (table, option) pair of a schema, tables named as in the reference."""
    found = []
    for name, field in model.model_fields.items():
        sub = config._model_of(field)
        if sub is not None and issubclass(sub, Section):
            found += options(sub, f"{prefix}.{name}" if prefix else name)
        else:
            found.append((prefix, name))
    return found


def test_reference_mentions_every_option_with_units_and_bounds():
    text = config.reference(DeviceConfig, "Device")
    sections = (part.partition("]`") for part in text.split("### `[")[1:])
    tables = {table: body for table, _, body in sections}

    for table, name in options(DeviceConfig):
        assert f"| `{name}` |" in tables[table], f"{table}.{name}"
    assert "| `port` | int | `1883` |  | ≥ 1, ≤ 65535 |" in tables["mqtt"]
    assert "| `keepalive` | int | `15` | s | ≥ 5, ≤ 600 |" in tables["mqtt"]
    assert "| Hz |" in tables["drivers.mfrc522"]
    assert "| `password` | SecretStr or None | unset |" in tables["mqtt"]
    assert "**required**" in tables["device"]
    assert "matches `^[A-Za-z0-9]" in tables["device"]


# -------------------------------------------------------------------------- property

scalars = (
    st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.booleans()
    | st.text(st.characters(codec="utf-8"), max_size=10)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
real_keys = sorted(
    {n for model in (DeviceConfig, CentralConfig) for _, n in options(model)}
    | set(DeviceConfig.model_fields)
    | set(CentralConfig.model_fields)
)
keys = st.sampled_from(real_keys) | st.text(st.characters(codec="utf-8"), max_size=8)
tables = st.dictionaries(keys, values, max_size=5)
documents = st.dictionaries(keys, tables | values, max_size=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=documents,
    model=st.sampled_from([DeviceConfig, CentralConfig]),
    on_valid=st.booleans(),
)
def test_random_documents_load_or_raise_config_error(changes, model, on_valid):
    doc = tomllib.loads(MINIMAL if model is DeviceConfig else CENTRAL) if on_valid else {}
    for key, value in changes.items():  # merge into tables, so most of the file stays valid
        old = doc.get(key)
        doc[key] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
    text = tomli_w.dumps(doc)

    try:
        assert isinstance(config.loads(text, model), model)
    except ConfigError as err:
        assert err.errors and all(isinstance(e, str) for e in err.errors)
