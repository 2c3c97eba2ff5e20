"""Invoices as QR codes, drawn on the server as inline SVG so the page needs no QR library."""

import re

import qrcode  # type: ignore[import-untyped]
import qrcode.image.svg  # type: ignore[import-untyped]

_SIZE_ATTRS = re.compile(r'\swidth="[^"]*"\s+height="[^"]*"')


def invoice_qr_svg(payment_request: str) -> str:
    """`LIGHTNING:<BOLT11>` upper-cased (QR alphanumeric mode: a smaller, easier-to-scan code) as scalable SVG."""
    image = qrcode.make(
        f"lightning:{payment_request}".upper(),
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=2,
    )
    svg: str = image.to_string(encoding="unicode")
    return _SIZE_ATTRS.sub(' role="img" aria-label="Lightning invoice QR code" class="qr"', svg, count=1)


def link_qr_svg(url: str) -> str:
    """A link (a till's pairing link) as a QR code a tablet's camera opens."""
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage,
                        error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    svg: str = image.to_string(encoding="unicode")
    return _SIZE_ATTRS.sub(' role="img" aria-label="Till link QR code" class="qr"', svg, count=1)
