"""pipelines/geoparse."""
