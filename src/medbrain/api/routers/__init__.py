"""One router per resource; ``api.app`` only assembles them."""
