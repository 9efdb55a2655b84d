"""The composition root (`root.Monitor`): configuration, preflight checks, and the wiring that
builds every part and starts them in order (docs/architecture.md)."""
