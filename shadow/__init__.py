"""shadow: mirror production traffic to staging and diff the responses."""
