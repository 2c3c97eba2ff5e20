"""The one place a running tipsplit is assembled: servers (embedded or given), store, Blink, services, sandbox."""
