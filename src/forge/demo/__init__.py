"""The embedded demo: a small, learnable coding task as teacher traffic."""
