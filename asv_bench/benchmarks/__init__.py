"""fastact's airspeed velocity suite.

Every parameter grid is built from the activation table (``fastact.activations()``)
when the suite is imported, so a new table entry is benchmarked without editing
this package.  ``common`` holds the shared pieces; each other module is one kind
of scenario (kernels, peers, limits, threads, memory, startup).
"""
