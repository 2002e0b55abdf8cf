"""Running workflows: activities and their context, the step runner that executes one delivery,
the worker that consumes queues, the dispatcher that starts workflows and waits for them, the
loader that finds activities in a module, and the choice of a worker's signer and identity
provider.

Modules here may import ``errors``, ``settings``, ``transports``, ``security``, ``workflow``
and ``plugins``; never ``agents`` or ``cli``.
"""
