"""streamscope: collectors."""
