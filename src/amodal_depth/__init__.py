"""amodal-depth."""
