"""The router: an OpenAI-compatible proxy with canary/sticky routing, teacher fallback and trace capture."""
