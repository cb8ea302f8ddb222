"""Component kinds, one package each (their declarations are listed in
:data:`simulator.registry.BUILTIN`), and what they share: ``base`` (the component contract and
capabilities), ``params`` (parameters every kind accepts), ``edge`` (call policies on a call
edge), ``client`` (workloads), ``network`` (regions), ``workers`` (a worker pool), ``hashing``.

Importing this package imports nothing else: the registry loads each kind's declaration, and a
kind's SimPy model only when a run builds it.
"""
