"""pipelines/pairing."""
