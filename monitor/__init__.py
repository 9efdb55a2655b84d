"""streamscope: monitor."""
