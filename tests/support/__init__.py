"""Helpers shared by the test suites: isolated databases and key prefixes."""
