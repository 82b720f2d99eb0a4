"""Rooms, participants, roles and the media streams published in a room."""
