"""The web layer: JSON API, /metrics, /healthz and the Dash dashboard on one port, reading only
the `WebContext` (context.py) the composition root gives it."""
