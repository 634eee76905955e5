"""Central's queue engine: services, counters, tickets, calls, appointments.

A pure core (:class:`~central.queue.engine.QueueEngine`: operations in, results out,
``now`` passed in), its persistence (:class:`~central.queue.store.QueueStore`) and its
config section (:class:`~central.queue.settings.QueueSection`). The MQTT service and the
CLI are built on top of it.
"""
