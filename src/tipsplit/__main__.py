"""`python -m tipsplit` runs the command line."""

from tipsplit.cli.main import main

main()
