"""pipelines/sample_world."""
