"""Continuing where earlier records stopped: the pack's horizon, the Context, and the on-disk history store."""
