"""streamscope: alerts."""
