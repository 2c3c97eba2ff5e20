"""The HTTP face of tipsplit: the JSON API, the pages, and what they share (auth, CSRF, errors, schemas)."""
