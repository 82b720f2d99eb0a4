"""The embedded TURN server (Debian's coturn, supervised) and checks of a TURN server."""
