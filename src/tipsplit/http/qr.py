"""Invoices as QR codes, drawn on the server as inline SVG so the page needs no QR library."""

import re
from typing import Any

import qrcode  # type: ignore[import-untyped]
import qrcode.image.svg  # type: ignore[import-untyped]

from tipsplit.services.invoicing import CreatedInvoice

_SIZE_ATTRS = re.compile(r'\swidth="[^"]*"\s+height="[^"]*"')


def invoice_qr_svg(payment_request: str) -> str:
    """`LIGHTNING:<BOLT11>` upper-cased (QR alphanumeric mode: a smaller, easier-to-scan code) as scalable SVG."""
    return _svg(f"lightning:{payment_request}".upper(), "Lightning invoice QR code")


def link_qr_svg(url: str) -> str:
    """A link (a till's pairing link) as a QR code a tablet's camera opens."""
    return _svg(url, "Till link QR code")


def _svg(data: str, label: str) -> str:
    image = qrcode.make(
        data, image_factory=qrcode.image.svg.SvgPathImage, error_correction=qrcode.constants.ERROR_CORRECT_M, border=2
    )
    svg: str = image.to_string(encoding="unicode")
    return _SIZE_ATTRS.sub(f' role="img" aria-label="{label}" class="qr"', svg, count=1)


def sale_answer(created: CreatedInvoice) -> dict[str, Any]:
    """What a page gets back for a new sale: the invoice, its split and its QR code."""
    return {
        "paymentHash": created.payment_hash,
        "paymentRequest": created.payment_request,
        "satoshis": created.satoshis,
        "expiresAt": created.expires_at.isoformat(),
        "split": created.split(),
        "qrSvg": invoice_qr_svg(created.payment_request),
    }
