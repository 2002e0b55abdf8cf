"""What operators see: the WorkflowStore contract and its records (``base``, ``records``), the
monitor that fills a store from the monitor queue (``monitor``), the built-in ``sqlite`` and
``memory`` stores, and dead-letter tools that list, show and redrive dead letters over any
transport (``dead_letters``).

Modules here may import ``errors``, ``settings``, ``transports``, ``security``, ``workflow``,
``plugins`` and ``runtime``; never ``agents`` or ``cli``.
"""
