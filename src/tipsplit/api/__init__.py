"""The HTTP face of tipsplit: thin routes over the invoice service and the settlement engine."""
