"""Web UI assets (Jinja2 templates, static files) and their presentation helpers."""
