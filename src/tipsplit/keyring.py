"""Encryption of merchants' Blink API keys at rest.

Keys are sealed with AES-256-GCM under a named key, and the key id travels in
the token so keys can be rotated: the newest key encrypts, every known key
decrypts. The original JavaScript app's CryptoJS passphrase format can be read
(never written) so its data can be migrated.
"""

import base64
import binascii
import hashlib
import os
import re
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tipsplit.settings import KEY_BYTES, Settings

PREFIX = "enc:v1:"
NONCE_BYTES = 12
TAG_BYTES = 16
AAD_PREFIX = b"tipsplit:v1:"
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")

CRYPTOJS_MAGIC = b"Salted__"
CRYPTOJS_PREFIX = "U2FsdGVkX1"
CBC_KEY_BYTES = 32
CBC_IV_BYTES = 16
AES_BLOCK_BITS = 128


class DecryptionError(ValueError):
    """A token cannot be opened; the message never holds key material or plaintext."""


class KeyRing:
    """The encryption keys in force: the last one encrypts, any of them decrypts."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        for key_id, key in keys.items():
            if not KEY_ID_RE.fullmatch(key_id):
                raise ValueError(f"key id {key_id!r} must be 1-16 letters, digits, '-' or '_'")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {key_id!r} is {len(key)} bytes, expected {KEY_BYTES}")
        self._ciphers = {key_id: AESGCM(bytes(key)) for key_id, key in keys.items()}
        self._current = next(reversed(self._ciphers))

    @classmethod
    def from_settings(cls, settings: Settings) -> "KeyRing":
        """The key ring of ENCRYPTION_KEYS; an empty setting is an error, never a default key."""
        if not settings.keyring:
            raise ValueError("ENCRYPTION_KEYS holds no key")
        return cls(settings.keyring)

    @staticmethod
    def generate_key(key_id: str | None = None) -> str:
        """A fresh random key as `id:base64` text, the ENCRYPTION_KEYS form, for sandbox mode."""
        key_id = key_id or f"k{secrets.token_hex(4)}"
        if not KEY_ID_RE.fullmatch(key_id):
            raise ValueError(f"key id {key_id!r} must be 1-16 letters, digits, '-' or '_'")
        return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode('ascii')}"

    @property
    def current_id(self) -> str:
        """The id of the key new tokens are sealed with."""
        return self._current

    def encrypt(self, plaintext: str) -> str:
        """Seal text under the current key as `enc:v1:<key_id>:<urlsafe-b64(nonce|ciphertext+tag)>`."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, plaintext.encode("utf-8"), _aad(self._current))
        return f"{PREFIX}{self._current}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, token: str) -> str:
        """Open a token sealed under any known key; tampering or an unknown key is a DecryptionError."""
        key_id, blob = _split_token(token)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(f"token was sealed under unknown key id {key_id!r}")
        try:
            plaintext = cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(key_id))
        except InvalidTag:
            raise DecryptionError(f"token under key {key_id!r} failed authentication") from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("token plaintext is not UTF-8") from None

    def needs_rotation(self, token: str) -> bool:
        """Whether a token is sealed under a key other than the current one."""
        key_id, _ = _split_token(token)
        return key_id != self._current

    def rotate(self, token: str) -> str:
        """Re-seal a token under the current key, so an old key can be retired."""
        return self.encrypt(self.decrypt(token))


def is_encrypted(value: str) -> bool:
    """Whether a stored value is one of our AES-GCM tokens (rather than a legacy value)."""
    return value.startswith(PREFIX)


def _aad(key_id: str) -> bytes:
    """Binding the key id and format version stops a token being replayed under another label."""
    return AAD_PREFIX + key_id.encode("ascii")


def _split_token(token: str) -> tuple[str, bytes]:
    """The key id and raw bytes of a token, refusing anything not in canonical form."""
    if not is_encrypted(token):
        raise DecryptionError("value is not an enc:v1 token")
    key_id, sep, encoded = token[len(PREFIX) :].partition(":")
    if not sep or not KEY_ID_RE.fullmatch(key_id):
        raise DecryptionError("token has a malformed key id")
    try:
        blob = base64.urlsafe_b64decode(encoded.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise DecryptionError("token body is not base64") from None
    if base64.urlsafe_b64encode(blob).decode("ascii") != encoded:
        raise DecryptionError("token body is not canonical base64")
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("token body is too short")
    return key_id, blob


def decrypt_cryptojs(token: str, passphrase: str) -> str:
    """Open the original app's `CryptoJS.AES.encrypt(text, passphrase)` output, for migration.

    That is OpenSSL's salted format: base64("Salted__" | salt[8] | AES-256-CBC
    ciphertext), key and IV from EVP_BytesToKey(MD5, one round).
    """
    try:
        raw = base64.b64decode("".join(token.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError("CryptoJS token is not base64") from None
    if not raw.startswith(CRYPTOJS_MAGIC) or len(raw) < 16 + CBC_IV_BYTES or len(raw) % CBC_IV_BYTES:
        raise DecryptionError("CryptoJS token is not in the salted OpenSSL format")
    salt, ciphertext = raw[8:16], raw[16:]
    material = _evp_bytes_to_key(passphrase.encode("utf-8"), salt, CBC_KEY_BYTES + CBC_IV_BYTES)
    decryptor = Cipher(algorithms.AES(material[:CBC_KEY_BYTES]), modes.CBC(material[CBC_KEY_BYTES:])).decryptor()
    unpadder = padding.PKCS7(AES_BLOCK_BITS).unpadder()
    try:
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        plaintext = unpadder.update(padded) + unpadder.finalize()
        return plaintext.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise DecryptionError("CryptoJS token: wrong passphrase or corrupt data") from None


def _evp_bytes_to_key(password: bytes, salt: bytes, length: int) -> bytes:
    """OpenSSL's legacy EVP_BytesToKey with MD5 and one iteration, as CryptoJS uses."""
    material = b""
    block = b""
    while len(material) < length:
        block = hashlib.md5(block + password + salt, usedforsecurity=False).digest()
        material += block
    return material[:length]
