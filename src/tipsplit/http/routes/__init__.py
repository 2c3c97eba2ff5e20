"""The JSON API: thin routes over the services."""
