"""streamscope: collectors/spark."""
