"""The HTTP edge: uploads, downloads, health, connection info and the browser client."""
