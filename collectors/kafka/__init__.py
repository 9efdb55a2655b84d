"""streamscope: collectors/kafka."""
