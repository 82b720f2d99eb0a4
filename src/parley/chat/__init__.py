"""Chat messages: validated, stored, then acknowledged and broadcast."""
