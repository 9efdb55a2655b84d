"""Dashboard pages; each module calls dash.register_page and declares its @dash.callback's.

Imported by `monitor.dashboard.mount_dashboard` (after the Dash app exists), never directly.
"""
