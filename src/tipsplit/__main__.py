"""`python -m tipsplit` runs the command line."""

from tipsplit.cli import main

main()
