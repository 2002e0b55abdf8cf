"""What travels between workers: the routing-slip message, its canonical JSON codec, the wire
format (seal and open: size limit and signature), the lifecycle events and the deps envelope.

Modules here may import ``errors``, ``settings``, ``transports`` and ``security``; never
``plugins``, ``runtime``, ``store``, ``agents`` or ``cli``.
"""
