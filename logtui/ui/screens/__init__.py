"""Modal screens over the dashboard."""
