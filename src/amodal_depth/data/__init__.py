"""Data: the `amodal-layers` format, the scene generator, the torch dataset, adapters."""
