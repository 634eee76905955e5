"""Devices' desired configs on the wire: signed documents out, the devices' reports in.

Technicians change configs with ``entrada tech config``, which writes new versions
straight into central's store (:class:`~central.devconfig.DesiredConfigs`, WAL). The
central service's owner thread calls this publisher, and nothing else does:

- on every device status (:meth:`ConfigPublisher.on_status`): make sure central holds a
  desired config for the device, in its role (a new device, or one whose role changed,
  gets a new version);
- about every :data:`PUMP_EVERY` seconds (:meth:`~ConfigPublisher.pump`): sign each version
  not published yet with the site key (bound to the device id and version) and publish it
  retained, QoS 1, on the device's ``config/desired``; clear the retained message of a
  removed device. A device takes its retained document whenever it connects, so one that
  was offline converges when it comes back;
- on every (re)connect (:meth:`~ConfigPublisher.link_up`): publish every device's current
  version again, since the broker may have lost its retained messages (a device that
  sees the version it runs again only reports it again);
- ``config/reported`` (:meth:`~ConfigPublisher.on_reported`): decoded strictly; a report
  must name the device of its topic; kept for ``entrada tech devices``.

Without a signing key (``[central] signing_key`` unset, said once at start) nothing is
published: devices refuse unsigned documents anyway. Versions and reports are still kept.
Documents may hold secrets: they are published only to the device's own topic (the broker's
ACL lets no one else read it) and never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central.devconfig import DesiredConfigs, UnknownDevice
from entrada import signing
from entrada.codes import Rejection
from entrada.errors import ProtocolError, StoreError
from entrada.logutil import ThrottledLog
from entrada.protocol import ConfigReported, Status, Topics, decode, encode, rejection_code

logger = logging.getLogger(__name__)

#: How often central's store is looked at for new versions (the CLI writes it directly), s.
PUMP_EVERY = 0.5
#: The device topic leaf of config reports.
REPORTED = "config/reported"

#: ``publish(topic, payload, qos=..., retain=...)``: True once handed to the broker link.
Publish = Callable[..., bool]


def load_signing_key(path: Path | None) -> Ed25519PrivateKey | None:
    """The site's private signing key (SigningError when it cannot be used); None, said
    once, when central has none configured."""
    if path is None:
        logger.warning(
            "no [central] signing_key: devices' desired configs are kept but not published"
        )
        return None
    key = signing.load_private_key(path)
    logger.info("desired configs are signed with %s", path)
    return key


class ConfigPublisher:
    """Desired configs out, reports in (central's owner thread only).

    ``db_path``: central's SQLite file (a connection of its own); ``key``: the site's
    private signing key, or None to publish nothing."""

    def __init__(self, db_path: Path, topics: Topics, key: Ed25519PrivateKey | None) -> None:
        self.topics = topics
        self.key = key
        self.configs = DesiredConfigs(db_path)
        self._refused = ThrottledLog(logger)
        #: The role central holds a desired config in, per device (saves a write per status).
        self._known = {device: role for device, role, _version in self.configs.devices()}
        self._next_pump = 0.0
        self._republish = True
        self.published = 0
        self.cleared = 0
        self.reports = 0
        self.refused = 0

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(self.topics.all_devices(REPORTED), 1)]

    def close(self) -> None:
        self.configs.close()

    # ---------------------------------------------------------------- incoming

    def on_status(self, status: Status, now: float, *, newest: bool = True) -> None:
        """A device announced itself: central holds a desired config for it in its role.
        A status older than the one kept (``newest`` False, e.g. a retained one seen again)
        only adds a device central has no config for; it never changes a role."""
        known = self._known.get(status.device)
        if known == status.role or (known is not None and not newest):
            return
        try:
            self.configs.add_device(status.device, status.role, now=now)
        except (UnknownDevice, StoreError) as err:
            self._refused.warning(
                ("add", type(err).__name__), "device %s: no desired config: %s", status.device, err
            )
            return
        self._known[status.device] = status.role
        self._next_pump = 0.0  # a new version to publish: at the next pass

    def on_reported(self, device: str, payload: bytes, now: float) -> bool:
        """A device's report on ``device``'s ``config/reported``; True when it was kept."""
        try:
            reported = decode(ConfigReported, payload)
        except ProtocolError as err:
            self._refuse(device, rejection_code(err), str(err))
            return False
        if reported.device != device:
            self._refuse(
                device,
                Rejection.WRONG_DEVICE,
                f"report of {reported.device!r} on the topic of {device!r}",
            )
            return False
        try:
            kept = self.configs.record_reported(reported, now=now)
        except StoreError as err:
            self._refused.error(
                ("store",), "keeping the config report of %s failed: %s", device, err
            )
            return False
        if kept:
            self.reports += 1
            logger.debug(
                "device %s: config version %d %s", device, reported.version, reported.state
            )
        return kept

    def _refuse(self, device: str, code: str, reason: str) -> None:
        self.refused += 1
        self._refused.warning(
            (REPORTED, code), "device config message of %s refused [%s]: %s", device, code, reason
        )

    # ---------------------------------------------------------------- outgoing

    def link_up(self) -> None:
        """Connected (again): every device's current version goes out again at once."""
        self._republish = True
        self._next_pump = 0.0

    def pump(self, publish: Publish, mono: float) -> None:
        """Publish what is due (call it on every pass of the owner loop while connected)."""
        if mono < self._next_pump:
            return
        self._next_pump = mono + PUMP_EVERY
        try:
            if self._clear_removed(publish):
                self._publish_due(publish)
        except StoreError as err:
            self._refused.warning(("store",), "device configs: cannot read the store: %s", err)

    def _clear_removed(self, publish: Publish) -> bool:
        """Clear removed devices' retained documents; False when the link went down."""
        for device in self.configs.removed_devices():
            if not publish(self.topics.config_desired(device), b"", qos=1, retain=True):
                return False
            self.configs.mark_cleared(device)
            self._known.pop(device, None)
            self.cleared += 1
            logger.info("desired config of removed device %s cleared", device)
        return True

    def _publish_due(self, publish: Publish) -> None:
        if self.key is None:
            return
        again = self._republish
        if again:
            due = [device for device, _role, _version in self.configs.devices()]
        else:
            due = [device for device, _version in self.configs.unpublished()]
        for device in due:
            try:
                message = self.configs.desired_message(device, self.key)
            except UnknownDevice:
                continue  # removed meanwhile: cleared at the next pass
            topic = self.topics.config_desired(device)
            if not publish(topic, encode(message), qos=1, retain=True):
                return  # not connected: everything due is still due at the next pass
            self.configs.mark_published(device, message.version)
            self.published += 1
            if not again:
                logger.info("desired config of %s: version %d published", device, message.version)
        if again and due:
            logger.info("desired configs of %d devices published again", len(due))
        self._republish = False
