"""The site broker's Mosquitto config, generated from a site folder (entrada.site_dir).

:func:`write_broker_config` writes ``mosquitto.conf``, ``passwd``, ``acl`` and the TLS
files (``ca.crt``, ``broker.crt``, ``broker.key``) into one folder. ``mosquitto.conf`` is
a whole main config, not a conf.d drop-in: it names every listener itself, so a leftover
drop-in (the bench's anonymous ``listener 1883``) cannot open a hole beside it.

Accounts. Every device and service has a username and a random password; the password
file holds PBKDF2-SHA512 hashes in Mosquitto's own ``$7$`` format, written here (the
registry already keeps them in that format, so ``mosquitto_passwd`` is not needed on the
admin's machine). ``allow_anonymous false``; with ``client_id_is_username`` (the default)
the broker also makes each client's id its username, so no account can take another's
client id to push it off the broker or take over its session.

The ACL, and why it is shaped this way:

- A device's own subtree ``entrada/SITE/device/ID/...`` is granted by ``pattern`` lines
  with ``%u`` (the username is the device id): the same twelve lines confine every device,
  leaf by leaf, to what the topic map lets it read or write. ``config/desired`` is only
  ever readable by a device, its own included.
- What a device may see of the site depends on its role (a gate reads the catalog head and
  its peers' presence, a dispenser or a display the queue board). A ``pattern`` cannot key
  on a role and Mosquitto has no groups in its ACL file, so each device gets a ``user ID``
  block with its role's site-wide lines. Usernames with a role prefix were the alternative:
  they would put the role into the device id and so into every topic, and a device could
  not change role without a new id.
- Mosquitto applies ``pattern`` lines to every account, services included: ``central``
  would otherwise own a phantom device subtree ``entrada/SITE/device/central/...`` whose
  events central might ingest. Each service's block therefore starts with a ``deny`` of
  that subtree (Mosquitto checks denials first), and provisioning keeps device ids and
  service names in one namespace so no device can ever be called ``central``.
- Services get ``user`` blocks only: central reads and writes the whole site (and
  ``$SYS`` for broker health), staff terminals send queue operations and read their own
  answers and the board, technicians send commands and watch the site but never publish
  ``config/desired``: config goes through central, which signs it.

Subscriptions are always granted (Mosquitto checks the ACL when it delivers each
message), so a device subscribing ``entrada/#`` receives only what it may read.

Queue limits are set on purpose (see :func:`queue_limits`): Mosquitto's default
``max_queued_messages 1000`` silently drops QoS 1 messages to a subscriber that falls
behind, which central does for a moment every time many devices flush their outboxes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from entrada.errors import EntradaError
from entrada.protocol import MAX_PAYLOAD_BYTES
from entrada.site_dir import AccountEntry, BrokerSection, SiteDir, write_file, write_secret

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------ passwords

#: PBKDF2 rounds. Passwords are 256-bit random tokens, so stretching adds no strength;
#: the broker hashes on its one thread at every CONNECT, and 250 devices reconnecting
#: after a restart must not stall it (1000 rounds: about a millisecond each on a Pi 4).
HASH_ITERATIONS = 1000
SALT_BYTES = 12


def hash_password(password: str, *, iterations: int = HASH_ITERATIONS) -> str:
    """``$7$ROUNDS$SALT$HASH``: PBKDF2-SHA512, base64, as ``mosquitto_passwd`` writes it."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        want = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(parts[2]))
    return hmac.compare_digest(got, want)


# ---------------------------------------------------------------------- queue limits

#: The device outbox's defaults (controller.settings.OutboxSection; a test keeps them in
#: step): events per batch and events in flight, so a device has at most
#: ceil(2000 / 200) = 10 event batches unacknowledged at once.
OUTBOX_BATCH_SIZE = 200
OUTBOX_MAX_INFLIGHT = 2000
#: Other messages a device may send central in the same moment: status, config/reported,
#: catalog/req, cmd/res, queue/req, logs, presence.
OTHER_MESSAGES_PER_DEVICE = 10
#: An unacknowledged window is re-sent after 3, 6, 12, 24 s...: copies that pile up while
#: central still drains the first.
RESEND_HEADROOM = 4
#: A generous size for one event on the wire (a decision with its logged inputs).
EVENT_BYTES = 512
MIN_QUEUED_MESSAGES = 10_000
MIN_QUEUED_MB = 64
#: Broker -> client QoS 1 window: 100 is a little faster than paho's 20, 1000 slower
#: (HARDWARE_NOTES).
INFLIGHT_MESSAGES = 100
#: Largest packet a client may send: our largest payload and room for topic and
#: properties. A larger one disconnects the client (logged) instead of the deprecated
#: ``message_size_limit``'s silent drop.
MAX_PACKET_SIZE = MAX_PAYLOAD_BYTES + 65_536


@dataclass(frozen=True)
class QueueLimits:
    max_queued_messages: int
    max_queued_bytes: int
    max_inflight_messages: int
    max_packet_size: int


def queue_limits(broker: BrokerSection) -> QueueLimits:
    """Per-client queue bounds sized from the site's device count and our batch sizes.

    When every device reconnects after an outage, each hands central its whole window at
    once: ``max_devices * (10 batches + 10 others)`` messages, plus re-sent copies while
    central drains them. The count is set so that burst is never cut. The byte bound is
    what limits memory: the whole first burst fits (``max_devices * 2000 events * 512 B``);
    beyond it (central away for minutes while devices keep re-sending the same windows)
    Mosquitto drops the surplus copies, and the devices' outboxes send them again once
    central is back, because nothing leaves an outbox unacknowledged.
    """
    batches = math.ceil(OUTBOX_MAX_INFLIGHT / OUTBOX_BATCH_SIZE)
    messages = broker.max_devices * (batches + OTHER_MESSAGES_PER_DEVICE) * RESEND_HEADROOM
    mb = broker.max_queued_mb
    if mb is None:
        mb = max(
            MIN_QUEUED_MB, math.ceil(broker.max_devices * OUTBOX_MAX_INFLIGHT * EVENT_BYTES / 2**20)
        )
    return QueueLimits(
        max_queued_messages=max(MIN_QUEUED_MESSAGES, messages),
        max_queued_bytes=mb * 2**20,
        max_inflight_messages=INFLIGHT_MESSAGES,
        max_packet_size=MAX_PACKET_SIZE,
    )


# ------------------------------------------------------------------------------ ACL

#: A device's own subtree: leaf -> access, from the topic map (docs/protocol.md).
DEVICE_SUBTREE: tuple[tuple[str, str], ...] = (
    ("status", "readwrite"),  # retained birth/will; re-asserted when overwritten
    ("events", "write"),
    ("ack", "read"),
    ("config/desired", "read"),  # never writable by a device, its own included
    ("config/reported", "write"),
    ("cmd/req", "read"),
    ("cmd/res", "write"),
    ("catalog/req", "write"),
    ("catalog/page", "read"),
    ("queue/req", "write"),
    ("queue/res", "read"),
    ("logs", "write"),
)

#: Site-wide topics by role (relative to entrada/SITE/); ``{id}`` is the device's id.
ROLE_TOPICS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "gate": (
        ("catalog/head", "read"),
        ("central/status", "read"),
        ("presence/+", "read"),
        ("presence/{id}", "write"),
    ),
    "dispenser": (("queue/board", "read"), ("central/status", "read")),
    "display": (("queue/board", "read"), ("central/status", "read")),
}

#: Service accounts by kind (relative to entrada/SITE/ unless absolute with ``$``).
SERVICE_TOPICS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "central": (("#", "readwrite"), ("$SYS/#", "read")),
    "staff": (
        ("queue/op/req", "write"),
        ("queue/op/res/{id}/#", "read"),
        ("queue/board", "read"),
    ),
    "technician": (("device/+/cmd/req", "write"), ("#", "read")),
}


def _site_topic(base: str, topic: str, name: str) -> str:
    topic = topic.replace("{id}", name)
    return topic if topic.startswith("$") else f"{base}/{topic}"


def render_acl(site_id: str, accounts: Mapping[str, AccountEntry]) -> str:
    """The ACL file for the site's active accounts."""
    base = f"entrada/{site_id}"
    lines = [
        f"# Entrada ACL for site {site_id}: generated by `entrada broker-config`; do not edit.",
        "# Everything not granted here is denied; why it is shaped so: entrada/brokerconf.py.",
        "",
        "# Every device, its own subtree (%u: the username, which is the device id).",
    ]
    lines += [f"pattern {access} {base}/device/%u/{leaf}" for leaf, access in DEVICE_SUBTREE]
    active = {name: a for name, a in sorted(accounts.items()) if a.active}
    devices = {n: a for n, a in active.items() if a.kind == "device"}
    services = {n: a for n, a in active.items() if a.kind != "device"}
    if devices:
        lines += ["", "# Devices: the site-wide topics their role needs."]
    for name, acc in devices.items():
        lines += ["", f"# {acc.role}", f"user {name}"]
        for topic, access in ROLE_TOPICS[str(acc.role)]:
            lines.append(f"topic {access} {_site_topic(base, topic, name)}")
    if services:
        lines += [
            "",
            "# Services. The patterns above apply to every account: a service's name must never",
            "# work as a device subtree, so each block starts by denying it (denials come first).",
        ]
    for name, acc in services.items():
        lines += ["", f"# {acc.kind}", f"user {name}", f"topic deny {base}/device/{name}/#"]
        for topic, access in SERVICE_TOPICS[acc.kind]:
            lines.append(f"topic {access} {_site_topic(base, topic, name)}")
    return "\n".join(lines) + "\n"


def render_passwords(accounts: Mapping[str, AccountEntry]) -> str:
    """Mosquitto's password file: ``name:$7$...`` for every active account."""
    return "".join(
        f"{name}:{acc.password_hash}\n" for name, acc in sorted(accounts.items()) if acc.active
    )


# ------------------------------------------------------------------- mosquitto.conf


@dataclass(frozen=True)
class BrokerHost:
    """Where the broker host keeps things: the paths and names written into mosquitto.conf.

    Production keeps the defaults; tests point everything into a temp folder and stay
    their own user (as root, Mosquitto drops to ``mosquitto``, which must be able to read
    the files and write the persistence folder)."""

    files_dir: Path = Path("/etc/mosquitto/entrada")
    persistence_dir: Path = Path("/var/lib/mosquitto")
    #: TLS listener address; None: every interface.
    bind: str | None = None
    #: ``user`` to run as when started as root; None: Mosquitto's default (mosquitto).
    user: str | None = None
    #: ``log_dest``: stderr goes to the journal under systemd.
    log_dest: str = "stderr"


def render_conf(site_id: str, broker: BrokerSection, host: BrokerHost) -> str:
    limits = queue_limits(broker)
    files = host.files_dir
    bind = f" {host.bind}" if host.bind else ""
    # A listener's own option: set before any `listener` line it would open Mosquitto's
    # default listener on port 1883, on every interface.
    same_id = (
        [
            "# A client's id is its username: nobody can take a device's or central's id to",
            "# push it off the broker or take over its session. Two tools sharing one",
            "# account therefore displace each other: give each technician its own account.",
            "use_username_as_clientid true",
        ]
        if broker.client_id_is_username
        else []
    )
    out = [
        f"# Mosquitto for Entrada site {site_id}: generated by `entrada broker-config`",
        "# from the site folder; do not edit (regenerate instead). A whole main config:",
        "# install as /etc/mosquitto/mosquitto.conf (it includes no conf.d drop-ins).",
        "",
        "# One set of security settings for every listener: the same accounts and ACL.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {files / 'passwd'}",
        f"acl_file {files / 'acl'}",
    ]
    out += [
        "",
        "# ---- TLS: every device and remote service ----",
        f"listener {broker.tls_port}{bind}",
        "protocol mqtt",
        f"cafile {files / 'ca.crt'}",
        f"certfile {files / 'broker.crt'}",
        f"keyfile {files / 'broker.key'}",
        "tls_version tlsv1.2",
        "# Accounts are passwords over TLS; client certificates are not asked for.",
        "require_certificate false",
        *same_id,
    ]
    if broker.plain_port is not None:
        out += [
            "",
            "# ---- Plain MQTT on loopback only: central on this host ----",
            "# Trade-off: it spares central's ingest the TLS work on the busiest connection, and",
            "# loopback traffic never leaves the host; but any local process can reach it",
            "# (still only with an account and its ACL). Leave it off unless central needs it.",
            f"listener {broker.plain_port} 127.0.0.1",
            "protocol mqtt",
            *same_id,
        ]
    out += [
        "",
        "# ---- Queue limits, chosen on purpose (entrada/brokerconf.py, queue_limits) ----",
        "# Mosquitto's default max_queued_messages 1000 silently drops QoS 1 messages to a",
        "# subscriber that falls behind. When devices come back after an outage each hands",
        f"# central up to {OUTBOX_MAX_INFLIGHT} events in batches of {OUTBOX_BATCH_SIZE}; "
        f"sized for {broker.max_devices} devices,",
        "# the count never cuts that burst, and the byte bound keeps the broker's memory in",
        "# hand. Past it only re-sent copies are dropped: outboxes re-send until acknowledged.",
        f"max_queued_messages {limits.max_queued_messages}",
        f"max_queued_bytes {limits.max_queued_bytes}",
        "# Broker -> client QoS 1 window (100: a little faster than 20, 1000 is slower).",
        f"max_inflight_messages {limits.max_inflight_messages}",
        "# Our largest payload is 1 MiB (entrada.protocol.MAX_PAYLOAD_BYTES); a client sending",
        "# a bigger packet is disconnected and logged, never silently dropped.",
        f"max_packet_size {limits.max_packet_size}",
        "# Small packets (an event batch, an ack) go out at once, not after a delayed ACK.",
        "set_tcp_nodelay true",
        "# Sessions of MQTT 3.1.1 clients that never come back do not hold queues forever",
        "# (MQTT 5 clients set their own session expiry).",
        "persistent_client_expiration 7d",
        "",
        "# ---- Persistence: retained status, config, acks and board survive a restart ----",
        "# Only a clean stop saves everything; zero loss never depends on it.",
        "persistence true",
        f"persistence_location {host.persistence_dir}/",
        "autosave_interval 60",
        "",
        "# ---- Logging: one line per connect and disconnect ----",
        f"log_dest {host.log_dest}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if host.user:
        out += ["", f"user {host.user}"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- write


@dataclass(frozen=True)
class BrokerFiles:
    out_dir: Path
    conf: Path
    passwd: Path
    acl: Path
    ca_cert: Path
    broker_cert: Path
    broker_key: Path


def write_broker_config(
    site_dir: str | Path, out_dir: str | Path, host: BrokerHost | None = None
) -> BrokerFiles:
    """Write the broker's files for the site into ``out_dir`` (created if missing).

    ``host.files_dir`` is where they will be installed on the broker host (the paths
    inside mosquitto.conf); tests pass ``out_dir`` itself."""
    site = SiteDir(site_dir)
    settings = site.settings()
    host = host or BrokerHost()
    out = Path(out_dir)
    for path in (site.ca_cert, site.broker_cert, site.broker_key):
        if not path.is_file():
            raise EntradaError(f"{path} is missing: the site folder is incomplete")
    accounts = site.accounts()
    site_id = settings.site.id
    files = BrokerFiles(
        out_dir=out,
        conf=out / "mosquitto.conf",
        passwd=out / "passwd",
        acl=out / "acl",
        ca_cert=out / "ca.crt",
        broker_cert=out / "broker.crt",
        broker_key=out / "broker.key",
    )
    out.mkdir(parents=True, exist_ok=True)
    write_file(files.conf, render_conf(site_id, settings.broker, host))
    write_secret(files.passwd, render_passwords(accounts))
    write_file(files.acl, render_acl(site_id, accounts), 0o640)
    write_file(files.ca_cert, site.ca_cert.read_bytes())
    write_file(files.broker_cert, site.broker_cert.read_bytes())
    write_secret(files.broker_key, site.broker_key.read_bytes())
    active = sum(1 for a in accounts.values() if a.active)
    logger.info("broker config for site %s: %d accounts, written to %s", site_id, active, out)
    return files
