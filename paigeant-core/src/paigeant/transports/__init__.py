"""The Transport contract (``base``: Transport, Delivery, Outgoing, BrowsedMessage, dead-letter
headers), the one place that names queues (``queues``), the in-memory reference transport
(``inmemory``), and helpers for consumers: keeping leases (``leases``) and consuming through
broker trouble (``consuming``).

Modules here may import ``errors`` and ``settings`` only, so a broker plugin depends on nothing
above the contract it implements.
"""
