"""The Textual dashboard: panels over the core's statistics, keyboard filtering."""
