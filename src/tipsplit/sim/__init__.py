"""A Blink simulator: the real Blink GraphQL schema served over an in-memory ledger.

`SimServer` runs it on a free port inside a test's event loop; `run` serves it
as a process (`tipsplit sim`); `create_app` returns the Starlette app.
"""

from tipsplit.sim.app import create_app
from tipsplit.sim.bolt11 import DecodedPaymentRequest, PaymentRequestError, decode_payment_request
from tipsplit.sim.ledger import Ledger
from tipsplit.sim.server import SimServer, run

__all__ = [
    "DecodedPaymentRequest", "Ledger", "PaymentRequestError", "SimServer", "create_app",
    "decode_payment_request", "run",
]
