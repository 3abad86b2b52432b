"""pipelines/harvest."""
