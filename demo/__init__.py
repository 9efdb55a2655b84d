"""streamscope: demo."""
