"""One widget per module; each takes the dashboard snapshot and shows its part."""
