"""The experiment tools behind the ``ecp`` command: bench, train, reproduce, data.

They use ecp's public API (:mod:`ecp`, :mod:`ecp.nn`) like any other caller; nothing in the
library imports them.
"""
