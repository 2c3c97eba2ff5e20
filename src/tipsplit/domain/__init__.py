"""Pure rules of money: amounts, tip splits, memos and payment states. Imports nothing else of tipsplit."""
