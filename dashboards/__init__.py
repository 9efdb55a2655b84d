"""streamscope: dashboards."""
