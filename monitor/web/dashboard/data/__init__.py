"""What the dashboard pages show, computed from the `WebContext` (docs/dashboard.md)."""
