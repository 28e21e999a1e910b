"""Training providers, inference clients and judges: the adapters Forge talks to models through."""
