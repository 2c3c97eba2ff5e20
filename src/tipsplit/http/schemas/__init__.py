"""What the JSON API reads and answers, as pydantic models: requests, answers, and the error body.

An answer model is also a filter: FastAPI sends only the fields it declares, so nothing a view or a cache
happens to carry (a wallet id, Blink's own error text) leaves unless a model here names it.
"""
