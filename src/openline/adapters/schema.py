"""The station database schema (SQLAlchemy Core). Alembic migrations create it.

Times are integer microseconds since the epoch (UTC). Content never appears in clear:
subjects, messages and summaries live only inside sealed envelope bodies.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

peers = Table(
    "peers",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("card", Text, nullable=False),
    Column("signing_key", String(64), nullable=False),
    Column("encryption_key", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("pinned_at", BigInteger, nullable=False),
)

lines = Table(
    "lines",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("peer", String(63), ForeignKey("peers.name"), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("answer_deadline_s", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("activated_at", BigInteger),
    Column("last_contact_at", BigInteger),
    Column("next_out_seq", BigInteger, nullable=False, default=1),
    Column("next_in_seq", BigInteger, nullable=False, default=1),
    Column("batch_id", String(36)),
    Column("retry_attempt", Integer, nullable=False, default=0),
    Column("retry_at", BigInteger),
    Column("last_error", Text),
)

envelopes = Table(
    "envelopes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("line_id", String(32), ForeignKey("lines.id"), nullable=False),
    Column("direction", String(3), nullable=False),  # "out" or "in"
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("call_id", String(36)),
    Column("time", BigInteger, nullable=False),
    Column("wire", Text, nullable=False),  # the signed envelope JSON exactly as sent/received
    Column("self_body", LargeBinary),  # outbound only: the body sealed to our own key
    Column("batch_id", String(36)),
    Column("stored_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger),  # outbound: when a valid receipt came back
    Column("receipt", Text),  # outbound: the peer's receipt; inbound: ours
    Column("refused", Text),  # outbound: the peer's permanent refusal, if any
    UniqueConstraint("line_id", "direction", "seq", name="uq_envelopes_line_direction_seq"),
    Index("ix_envelopes_outbox", "line_id", "direction", "delivered_at", "seq"),
    Index("ix_envelopes_call", "call_id"),
)

calls = Table(
    "calls",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("line_id", String(32), ForeignKey("lines.id"), nullable=False),
    Column("peer", String(63), nullable=False),
    Column("direction", String(3), nullable=False),  # "out": we called; "in": they called
    Column("priority", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("place_envelope_id", String(36), nullable=False),
    Column("placed_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger),
    Column("ringing_at", BigInteger),
    Column("picked_up_at", BigInteger),
    Column("closed_at", BigInteger),
    Column("missed_at", BigInteger),
    Column("declined_at", BigInteger),
    Column("cancelled_at", BigInteger),
    Column("deadline_at", BigInteger),  # callee side: when ringing turns missed
    Column("picked_up_by", String(64)),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_calls_deadline", "state", "deadline_at"),
)

call_events = Table(
    "call_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(36), ForeignKey("calls.id"), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("event", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("envelope_id", String(36)),
    Column("detail", Text),  # metadata only, never content
    Index("ix_call_events_call", "call_id", "id"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256)),
)
