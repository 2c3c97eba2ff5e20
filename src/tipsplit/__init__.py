"""tipsplit: forward a Lightning POS payment's base to the merchant and its tips to staff, exactly once."""

__version__ = "0.1.0"
