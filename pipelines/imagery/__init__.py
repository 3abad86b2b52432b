"""pipelines/imagery."""
