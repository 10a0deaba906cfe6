"""Compiled kernels of ecp. Private: call them through ``ecp.conv`` and ``ecp.pool``, which validate."""
