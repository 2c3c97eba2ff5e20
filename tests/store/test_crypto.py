"""API-key encryption: AES-256-GCM tokens with key rotation, and the original app's CryptoJS format."""

import base64
import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipsplit.keyring import DecryptionError, KeyRing, decrypt_cryptojs, is_encrypted
from tipsplit.settings import load_settings

API_KEY = "blink_Zq8v1TestKeyThatMustNeverLeak0123456789"

# Made with: printf '%s' PLAINTEXT | openssl enc -aes-256-cbc -md md5 -base64 -A -pass pass:PASSPHRASE
CRYPTOJS_VECTORS = [
    (
        "U2FsdGVkX1/kdpJw73wIS9n3A4+qSVXcHcL+Ia4LQ/gw8pCbODVg6uzPAw18bIkDCxXcBXTBcK7QXgJLSIzChQ==",
        "correct horse battery staple",
        "blink_k3yPl41nText0123456789abcdef",
    ),
    ("U2FsdGVkX18oUeV/YEZauHO7i446Xt0dSCydM5ChPII=", "pässwörd-ü", "short"),
    (
        "U2FsdGVkX1+2lxVYQLx5adKz/vmDDK/rOFDbHyzOjlEaryoLXZEKV0hCae0opTNeSgHzBjtEjF66ELDLkb6nQw==",
        "s3cret",
        "blink_" + "x" * 40,
    ),
]


def ring(*ids: str) -> KeyRing:
    return KeyRing({key_id: os.urandom(32) for key_id in ids})


def test_round_trip_and_format() -> None:
    keys = ring("k1")
    token = keys.encrypt(API_KEY)
    assert token.startswith("enc:v1:k1:")
    assert is_encrypted(token) and not is_encrypted(API_KEY)
    assert keys.decrypt(token) == API_KEY
    blob = base64.urlsafe_b64decode(token.split(":", 3)[3])
    assert len(blob) == 12 + len(API_KEY) + 16


def test_ciphertext_never_contains_the_plaintext_and_nonces_differ() -> None:
    keys = ring("k1")
    tokens = {keys.encrypt(API_KEY) for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert API_KEY not in token
        assert API_KEY.encode() not in base64.urlsafe_b64decode(token.split(":", 3)[3])


def test_rotation_keeps_old_tokens_readable_and_reseals_under_the_new_key() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    before = KeyRing({"old": old_key})
    token = before.encrypt(API_KEY)
    after = KeyRing({"old": old_key, "new": new_key})
    assert after.current_id == "new"
    assert after.decrypt(token) == API_KEY
    assert after.needs_rotation(token)
    rotated = after.rotate(token)
    assert rotated.startswith("enc:v1:new:")
    assert not after.needs_rotation(rotated)
    assert KeyRing({"new": new_key}).decrypt(rotated) == API_KEY
    with pytest.raises(DecryptionError, match="unknown key id 'new'"):
        before.decrypt(rotated)


def test_every_flipped_character_is_detected() -> None:
    keys = ring("k1")
    token = keys.encrypt(API_KEY)
    for i, char in enumerate(token):
        for replacement in {chr(ord(char) ^ 1), "A" if char != "A" else "B"}:
            tampered = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(DecryptionError):
                keys.decrypt(tampered)


def test_every_flipped_ciphertext_bit_is_detected() -> None:
    keys = ring("k1")
    head, body = keys.encrypt(API_KEY).rsplit(":", 1)
    blob = base64.urlsafe_b64decode(body)
    for i in range(len(blob)):
        flipped = blob[:i] + bytes([blob[i] ^ 0x80]) + blob[i + 1 :]
        with pytest.raises(DecryptionError):
            keys.decrypt(f"{head}:{base64.urlsafe_b64encode(flipped).decode()}")


def test_a_token_relabelled_with_another_key_id_fails() -> None:
    key = os.urandom(32)
    keys = KeyRing({"a": key, "b": key})
    token = keys.encrypt(API_KEY)
    assert token.startswith("enc:v1:b:")
    with pytest.raises(DecryptionError):
        keys.decrypt("enc:v1:a:" + token.removeprefix("enc:v1:b:"))


def test_unknown_key_id_and_garbage_are_decryption_errors() -> None:
    token = ring("k1").encrypt(API_KEY)
    with pytest.raises(DecryptionError, match="unknown key id 'k1'"):
        ring("k2").decrypt(token)
    for garbage in ["", "enc:v1:", "enc:v1:k1", "enc:v1:k1:", "enc:v1:k1:AAAA", "enc:v1:bad id:AAAA", API_KEY]:
        with pytest.raises(DecryptionError):
            ring("k1").decrypt(garbage)


def test_error_messages_hold_no_secret() -> None:
    key = os.urandom(32)
    keys = KeyRing({"k1": key})
    token = keys.encrypt(API_KEY)
    tampered = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(DecryptionError) as caught:
        keys.decrypt(tampered)
    message = str(caught.value)
    assert API_KEY not in message and base64.b64encode(key).decode() not in message and key.hex() not in message


def test_key_ring_refuses_bad_keys() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing({})
    with pytest.raises(ValueError, match="expected 32"):
        KeyRing({"k1": os.urandom(16)})
    with pytest.raises(ValueError, match="key id"):
        KeyRing({"a:b": os.urandom(32)})


def test_generated_keys_load_through_settings() -> None:
    first, second = KeyRing.generate_key("old"), KeyRing.generate_key()
    assert first.startswith("old:") and len(base64.b64decode(first.partition(":")[2])) == 32
    keys = KeyRing.from_settings(load_settings(encryption_keys=f"{first},{second}"))
    assert keys.current_id == second.partition(":")[0]
    assert keys.decrypt(keys.encrypt(API_KEY)) == API_KEY
    with pytest.raises(ValueError, match="ENCRYPTION_KEYS"):
        KeyRing.from_settings(load_settings(encryption_keys=""))


OLD_FOR_PROPERTY = {"k1": os.urandom(32)}
KEYS_FOR_PROPERTY = KeyRing(OLD_FOR_PROPERTY)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=600))
def test_round_trip_property(plaintext: str) -> None:
    keys = KEYS_FOR_PROPERTY
    token = keys.encrypt(plaintext)
    assert keys.decrypt(token) == plaintext
    assert KeyRing({**OLD_FOR_PROPERTY, "k2": os.urandom(32)}).rotate(token).startswith("enc:v1:k2:")


@pytest.mark.parametrize(("token", "passphrase", "plaintext"), CRYPTOJS_VECTORS)
def test_cryptojs_fixed_vectors(token: str, passphrase: str, plaintext: str) -> None:
    assert decrypt_cryptojs(token, passphrase) == plaintext


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize("plaintext", ["", "a", "blink_" + "k" * 26, "exactly sixteen!", "ünïcødé ⚡ tips", "x" * 1000])
def test_cryptojs_matches_openssl(plaintext: str) -> None:
    passphrase = base64.b64encode(os.urandom(12)).decode()
    token = (
        subprocess.run(
            ["openssl", "enc", "-aes-256-cbc", "-md", "md5", "-base64", "-A", "-pass", f"pass:{passphrase}"],
            input=plaintext.encode(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    assert token.startswith("U2FsdGVkX1")
    assert decrypt_cryptojs(token, passphrase) == plaintext


@pytest.mark.parametrize(("token", "passphrase", "plaintext"), CRYPTOJS_VECTORS)
def test_cryptojs_wrong_passphrase_or_corruption(token: str, passphrase: str, plaintext: str) -> None:
    with pytest.raises(DecryptionError) as caught:
        decrypt_cryptojs(token, passphrase + "!")
    assert plaintext not in str(caught.value) and passphrase not in str(caught.value)
    raw = base64.b64decode(token)
    for corrupt in [raw[:-1], raw[:16], b"Salted_!" + raw[8:], raw[:-16] + bytes(16)]:
        with pytest.raises(DecryptionError):
            decrypt_cryptojs(base64.b64encode(corrupt).decode(), passphrase)
    with pytest.raises(DecryptionError):
        decrypt_cryptojs("not base64 at all!", passphrase)
