"""The tariff and admission engine: pure functions, shared with central/.

Nothing here does IO, reads a clock or sleeps: every input (``now`` included) is passed
in and a decision comes back as a value, so central can replay any decision a gate made.
"""
