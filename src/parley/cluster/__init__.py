"""Cluster mode: several Parley nodes sharing live state and room events through Redis."""
