"""Webhooks: meeting events kept in an outbox, signed and POSTed to other applications."""
