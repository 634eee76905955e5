"""Hardware behind small Protocols, each with a real and a simulated implementation.

The config names the implementation (``rfid = "mfrc522"`` or ``"sim"``); `drivers.registry`
maps those names to classes. Simulation is chosen in config, never slipped in because the
hardware is missing: a real driver that cannot reach its device raises DriverError.
"""
