"""Device roles: each reacts to an input and returns what should happen, as values.

A role never touches IO. The runtime carries out its actions: pulse the relay, signal
the indicator, and emit events into the outbox in one store transaction.
"""
