"""The Transport contract (``base``: Transport, Delivery, Outgoing, dead-letter headers), the
one place that names queues (``queues``), and the in-memory reference transport (``inmemory``).

Modules here may import ``errors`` and ``settings`` only, so a broker plugin depends on nothing
above the contract it implements.
"""
