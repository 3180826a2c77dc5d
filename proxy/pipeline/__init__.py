"""The data-plane pipeline: one client connection and its upstream connection."""
