"""The `tipsplit` command line: serving, the simulator, and the operator's commands."""
