"""Settings from the environment (and `.env`), validated once at start-up.

Names follow the hybrid-storage design so an existing deployment's
environment carries over. A bad value stops start-up with the variable named.
"""

import base64
import binascii
import ipaddress
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

KEY_BYTES = 32
# The most settlements at once a default derives from the pool (see Settings.settlements_at_once).
MAX_DERIVED_SETTLEMENTS = 32


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def parse_trusted_proxies(value: str) -> list[str]:
    """Parse `TRUSTED_PROXIES` (comma-separated IP addresses or CIDR networks) into normalised entries."""
    entries: list[str] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(f"{part!r} is not an IP address or CIDR network") from None
        entries.append(str(network.network_address) if network.num_addresses == 1 else str(network))
    return entries


def parse_encryption_keys(value: str) -> dict[str, bytes]:
    """Parse `id:base64,id:base64` into an ordered {id: 32-byte key} map (last one encrypts)."""
    keys: dict[str, bytes] = {}
    for pair in (part.strip() for part in value.split(",")):
        if not pair:
            continue
        key_id, sep, encoded = pair.partition(":")
        if not sep or not key_id:
            raise ValueError(f"entry {pair[:8]!r}… is not of the form id:base64")
        if len(key_id) > 16 or not key_id.isascii() or not key_id.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"key id {key_id!r} must be 1-16 letters, digits, '-' or '_'")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"key {key_id!r} is not valid base64") from exc
        if len(raw) != KEY_BYTES:
            raise ValueError(f"key {key_id!r} decodes to {len(raw)} bytes, expected {KEY_BYTES}")
        if key_id in keys:
            raise ValueError(f"key id {key_id!r} appears twice")
        keys[key_id] = raw
    return keys


def parse_pos_accounts(value: str) -> list[tuple[str, str]]:
    """Parse `BLINKPOS_ACCOUNTS`, `apiKey:btcWalletId,apiKey:btcWalletId`, into (key, wallet id) pairs."""
    accounts: list[tuple[str, str]] = []
    for number, pair in enumerate((part.strip() for part in value.split(",") if part.strip()), start=1):
        api_key, sep, wallet_id = pair.rpartition(":")
        if not sep or not api_key.strip() or not wallet_id.strip():
            raise ValueError(f"entry {number} is not of the form apiKey:btcWalletId")
        if any(wallet_id.strip() == known for _, known in accounts):
            raise ValueError(f"entry {number} names a wallet id already in the list")
        accounts.append((api_key.strip(), wallet_id.strip()))
    return accounts


PARSERS: dict[str, Callable[[str], object]] = {
    "encryption_keys": parse_encryption_keys,
    "blinkpos_accounts": parse_pos_accounts,
    "trusted_proxies": parse_trusted_proxies,
}


class Settings(BaseSettings):
    """Every knob of tipsplit. Unset database URLs mean embedded servers; unset BLINK_API_URL means sandbox.

    Redis is one of three deployments, told apart by REDIS_URL's scheme (store/redis_client.py):
    `redis://host:port/db` (or `rediss://`) is one server; `redis+cluster://host:port[,host:port...]`
    is a Redis Cluster reached through any of the nodes listed; a master kept by Sentinel is given as
    REDIS_SENTINELS=`host:port,host:port` with REDIS_SENTINEL_MASTER=`name` (and REDIS_SENTINEL_PASSWORD
    if the sentinels want one), which stands for REDIS_URL=`redis+sentinel://host:port,host:port/name`.
    REDIS_PASSWORD and REDIS_TLS apply to the data nodes in every case.

    PostgreSQL: DATABASE_URL may list several hosts, libpq style, with failover to the writable one:
    `postgresql://user@db1:5432,db2:5432/tipsplit?target_session_attrs=read-write`.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True, populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Field(default=Path(".tipsplit"), validation_alias="TIPSPLIT_DATA_DIR")

    redis_sentinels: str | None = None
    redis_sentinel_master: str | None = None
    redis_sentinel_password: str | None = None
    redis_url: str | None = Field(default=None, validate_default=True)
    redis_password: str | None = None
    redis_tls: bool = False
    redis_key_prefix: str = ""

    database_url: str | None = None
    database_pool_min: int = Field(default=2, ge=1, le=100)
    database_pool_max: int = Field(default=10, ge=1, le=500)

    use_hybrid_storage: bool = True
    fallback_to_file_storage: bool = False
    tip_store_file: Path = Path(".tip-store.json")
    journal_file: Path | None = None

    encryption_keys: Annotated[str, NoDecode] = ""

    invoice_expiry_minutes: int = Field(default=1440, ge=1, le=1440)
    lock_ttl_seconds: int = Field(default=300, ge=1)
    claim_lease_seconds: int = Field(default=60, ge=5)
    stats_ttl_seconds: int = Field(default=3600, ge=1)
    owner_check_ttl_seconds: int = Field(default=60, ge=0)
    allow_write_merchant_keys: bool = False
    rate_limit_window_seconds: int = Field(default=3600, ge=1)
    rate_limit_per_wallet: int = Field(default=600, ge=1)
    rate_limit_per_ip: int = Field(default=1200, ge=1)
    forward_rate_limit_per_ip: int = Field(default=120, ge=1)
    forward_rate_limit_window_seconds: int = Field(default=60, ge=1)
    forward_answer_reuse_seconds: float = Field(default=2.0, ge=0, le=60)
    max_leg_attempts: int = Field(default=6, ge=1, le=100)
    leg_retry_base_seconds: float = Field(default=2.0, gt=0)
    poll_interval_seconds: float = Field(default=5.0, gt=0)
    reconcile_interval_seconds: float = Field(default=5.0, gt=0)
    settle_concurrency: int | None = Field(default=None, ge=1, le=1000)
    max_memo_length: int = Field(default=639, ge=1, le=2000)

    blink_api_url: str | None = None
    blinkpos_api_key: str | None = None
    blinkpos_btc_wallet_id: str | None = None
    blinkpos_accounts: Annotated[str, NoDecode] = ""
    blink_webhook_secret: str | None = None
    blink_invoice_limit_points: int = Field(default=60, ge=1)
    blink_invoice_limit_window_seconds: float = Field(default=60, gt=0)
    blink_invoice_limit_block_seconds: float = Field(default=300, ge=0)
    blink_invoice_limit_margin: int = Field(default=3, ge=0)
    sim_port: int = Field(default=8100, ge=0, le=65535)
    sandbox_rate_limits: bool = True

    operator_token: str | None = None
    session_secret: str | None = None
    trusted_proxies: Annotated[str, NoDecode] = ""
    secure_cookies: bool = False
    public_metrics: bool = False
    log_level: str = "INFO"
    log_format: str = Field(default="console", pattern="^(console|json)$")

    @field_validator("encryption_keys", "blinkpos_accounts", "trusted_proxies")
    @classmethod
    def _check_parses(cls, value: str, info) -> str:  # type: ignore[no-untyped-def]
        """Lists kept as strings (their env form) are parsed once here, so a bad one stops start-up."""
        PARSERS[info.field_name](value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _sentinel_url(cls, value: str | None, info) -> str | None:  # type: ignore[no-untyped-def]
        """REDIS_SENTINELS and REDIS_SENTINEL_MASTER are another way to write REDIS_URL, never both at once."""
        sentinels, master = info.data.get("redis_sentinels"), info.data.get("redis_sentinel_master")
        if not (sentinels or master):
            return value
        if value:
            raise ValueError("set either REDIS_URL or REDIS_SENTINELS with REDIS_SENTINEL_MASTER, not both")
        if not (sentinels and master):
            raise ValueError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER must be set together")
        hosts = ",".join(item.strip() for item in sentinels.split(",") if item.strip())
        return f"redis+sentinel://{hosts}/{master}"

    @field_validator("blink_invoice_limit_margin")
    @classmethod
    def _margin_below_points(cls, value: int, info) -> int:  # type: ignore[no-untyped-def]
        points = info.data.get("blink_invoice_limit_points", 60)
        if value >= points:
            raise ValueError(f"must be below BLINK_INVOICE_LIMIT_POINTS ({points})")
        return value

    @field_validator("database_pool_max")
    @classmethod
    def _pool_bounds(cls, value: int, info) -> int:  # type: ignore[no-untyped-def]
        low = info.data.get("database_pool_min", 1)
        if value < low:
            raise ValueError(f"must be >= DATABASE_POOL_MIN ({low})")
        return value

    @property
    def settlements_at_once(self) -> int:
        """How many payments the detection paths settle at once: SETTLE_CONCURRENCY, else derived from the pool.

        A settlement spends most of its time waiting on Blink and holds a PostgreSQL connection only for its
        short statements, so four settlements per pooled connection keep the pool busy without queueing on it;
        at most 32, since each runs its legs concurrently over the Blink client's 100 connections.
        """
        if self.settle_concurrency is not None:
            return self.settle_concurrency
        return max(8, min(4 * self.database_pool_max, MAX_DERIVED_SETTLEMENTS))

    @property
    def sandbox(self) -> bool:
        """Sandbox mode runs the bundled Blink simulator instead of talking to Blink."""
        return not self.blink_api_url

    @cached_property
    def keyring(self) -> dict[str, bytes]:
        """The parsed encryption keys, in order; the last one encrypts."""
        return parse_encryption_keys(self.encryption_keys)

    @property
    def pos_accounts(self) -> list[tuple[str, str]]:
        """Every POS account as (API key, BTC wallet id): the single-account pair if set, then BLINKPOS_ACCOUNTS.

        The first is the one payments stored before they recorded their POS account were received by, which
        is the single account of a deployment that later grew a pool.
        """
        pool = parse_pos_accounts(self.blinkpos_accounts)
        single = (self.blinkpos_api_key, self.blinkpos_btc_wallet_id)
        if not (single[0] and single[1]):
            return pool
        return [(single[0], single[1]), *(account for account in pool if account[1] != single[1])]

    @property
    def proxy_hosts(self) -> list[str]:
        """The addresses whose X-Forwarded-For / X-Forwarded-Proto are believed; empty: nobody's."""
        return parse_trusted_proxies(self.trusted_proxies)

    @property
    def journal_path(self) -> Path:
        """Where writes go, fsynced, while PostgreSQL is down."""
        return self.journal_file or self.data_dir / "journal.jsonl"

    def require_production_secrets(self) -> None:
        """Outside sandbox mode, refuse to start without what real money needs."""
        if self.sandbox:
            return
        missing = ["ENCRYPTION_KEYS"] if not self.encryption_keys else []
        if not self.blinkpos_accounts:
            missing += [
                name
                for name, value in (
                    ("BLINKPOS_API_KEY", self.blinkpos_api_key),
                    ("BLINKPOS_BTC_WALLET_ID", self.blinkpos_btc_wallet_id),
                )
                if not value
            ]
        if missing:
            raise SettingsError(
                f"missing required setting(s) outside sandbox mode: {', '.join(missing)}"
                " (or BLINKPOS_ACCOUNTS for a pool of POS accounts)"
            )


def load_settings(**overrides: object) -> Settings:
    """Load settings, turning pydantic's report into one message that names each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{str(err['loc'][0]).upper() if err['loc'] else '?'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
