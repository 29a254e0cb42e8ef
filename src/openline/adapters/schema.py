"""The station database schema (SQLAlchemy Core). Alembic migrations create it.

Times are integer microseconds since the epoch (UTC). Content never appears in clear:
subjects, messages and summaries live only inside sealed envelope bodies.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
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
    Column("email", String(254)),  # where e-mail notifications go, if any
    Column("totp_secret", String(64)),  # base32; set when the user enrolled a second factor
    Column("totp_last_step", BigInteger),  # the last 30-s step whose code was accepted (no reuse)
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the cookie's token
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_sessions_user", "user_id"),
)

login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(200), primary_key=True),  # "user:<name>" or "ip:<address>"
    Column("failures", Integer, nullable=False),
    Column("next_allowed_at", BigInteger, nullable=False),
)

# Idempotency-Key (docs/api.md): what a client's key made, so that a request sent again
# after a timeout answers with it instead of doing it twice. Kept for a day.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),  # of the method, path and body
    Column("made", String(64), nullable=False),  # the id of what the request made
    Column("created_at", BigInteger, nullable=False),
    Index("ix_idempotency_keys_created", "created_at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,  # a removed row's number is never handed out again (0016)
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
    # A pick-up is a lease: with no action by the officer for this long, the call rings again.
    Column("rering_timeout_s", Integer, nullable=False, server_default="300"),
    # A notice from the peer must be acknowledged (or rejected) within this long.
    Column("notice_deadline_s", Integer, nullable=False, server_default="3600"),
    # Separation margins between two activities (openline.core.conflicts.Margins): line terms.
    Column("margin_horizontal_m", Float, nullable=False, server_default="0"),
    Column("margin_vertical_m", Float, nullable=False, server_default="0"),
    Column("margin_minutes", Integer, nullable=False, server_default="0"),
    # New terms our administrator proposed (JSON, as the handshake carries terms), adopted
    # once a handshake finds the peer proposing the same (services.line_terms.propose).
    Column("proposed_terms", Text),
    Column("proposed_at", BigInteger),
    # The peer's clock against ours (services.peer_clock): the bounds of its offset (µs,
    # theirs minus ours) the last round trip proved, when, and since when it has been off
    # by more than the station allows.
    Column("peer_clock_low", BigInteger),
    Column("peer_clock_high", BigInteger),
    Column("peer_clock_at", BigInteger),
    Column("peer_clock_off_since", BigInteger),
    # Our administrator stopped trusting the peer (services.lines.suspend): when, who, why.
    # While set, the line is `suspended`: nothing is taken from the peer or sent to it.
    Column("suspended_at", BigInteger),
    Column("suspended_by", String(128)),
    Column("suspend_reason", Text),
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
    Column("delivered_at", BigInteger),  # outbound: when a valid receipt (or refusal) came back
    Column("receipt", Text),  # outbound: the peer's receipt or refusal; inbound: ours
    # "code: detail" of a refusal for good (0017): the peer's of an outbound envelope, or
    # ours of an inbound one; its signed form is in `receipt`.
    Column("refused", Text),
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
    # Escalation (callee side): the line's policy as it was when the call started ringing,
    # where it has got to, and when the next step is due. Also the pick-up lease.
    Column("escalation", Text),
    Column("escalation_step", Integer),
    Column("escalation_round", Integer),
    Column("next_escalation_at", BigInteger),
    Column("lease_until", BigInteger),
    Index("ix_calls_deadline", "state", "deadline_at"),
    Index("ix_calls_placed", "placed_at", "id"),  # the newest first: the board, the history
    Index("ix_calls_escalation", "next_escalation_at"),
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

# The watch floor ------------------------------------------------------------------------

escalation_policies = Table(
    "escalation_policies",
    metadata,
    Column("line_id", String(32), ForeignKey("lines.id"), primary_key=True),
    Column("policy", Text, nullable=False),  # JSON, see openline.core.escalation
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(64), nullable=False),
)

shifts = Table(
    "shifts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("start_local", String(19), nullable=False),  # wall time in `tz`: 2026-11-27T06:00:00
    Column("tz", String(64), nullable=False),  # IANA zone, e.g. Europe/Berlin
    Column("duration_s", Integer, nullable=False),
    Column("rrule", String(500)),  # RFC 5545 RRULE value, expanded in local time
    Column("created_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,  # a removed row's number is never handed out again (0016)
)

roster_overrides = Table(
    "roster_overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),  # on duty instead
    Column("replaces_user_id", Integer, ForeignKey("users.id")),  # whose duty it takes, if anyone's
    Column("start_at", BigInteger, nullable=False),
    Column("end_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,  # a removed row's number is never handed out again (0016)
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("call_id", String(36), ForeignKey("calls.id")),
    Column("alert_id", Integer),  # the alert that paged, for an alert's notifications
    Column("kind", String(32), nullable=False),
    Column("recipient", String(64), nullable=False),  # a user name, or "station" for webhooks
    Column("channel", String(16), nullable=False),  # console, email, webhook
    Column("address", String(500), nullable=False),
    Column("title", String(200), nullable=False),  # metadata only
    Column("text", Text, nullable=False),  # metadata only
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger),
    Column("sent_at", BigInteger),
    Column("last_error", Text),
    Index("ix_notifications_due", "channel", "status", "next_attempt_at"),
    Index("ix_notifications_created", "created_at", "id"),  # the newest first
    Index("ix_notifications_call", "call_id"),
    Index("ix_notifications_alert", "alert_id"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # roster_gap, escalation_stalled, missed_call, ...
    Column("subject", String(64), nullable=False),  # what it is about: a call id, a time window
    Column("detail", Text, nullable=False),  # metadata only
    Column("raised_at", BigInteger, nullable=False),
    Column("acknowledged_at", BigInteger),
    Column("acknowledged_by", String(64)),
    # Paging until acknowledged: a copy of the escalation policy (made when it first
    # pages), the step due next and when; NULL when it does not page or pages no more.
    Column("escalation", Text),
    Column("escalation_step", Integer),
    Column("escalation_round", Integer),
    Column("next_escalation_at", BigInteger),
    UniqueConstraint("kind", "subject", name="uq_alerts_kind_subject"),
    Index("ix_alerts_next_escalation", "next_escalation_at"),
    Index("ix_alerts_open", "acknowledged_at", "kind"),  # the open ones: acknowledged_at IS NULL
)

handovers = Table(
    "handovers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("from_user", String(64), nullable=False),
    Column("note", Text, nullable=False),  # the outgoing officer's words: content, kept local
    Column("open_items", Text, nullable=False),  # JSON: what was open when it was written
    Column("created_at", BigInteger, nullable=False),
    Column("acknowledged_by", String(64)),
    Column("acknowledged_at", BigInteger),
    Index("ix_handovers_pending", "acknowledged_at"),  # those not yet acknowledged: IS NULL
)

# The evidence ledger (see docs/ledger.md) -----------------------------------------------

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

ledger_pending = Table(
    "ledger_pending",
    metadata,
    # Entries committed with their events, waiting for the integrator to sequence them.
    Column("seq", _BIG_ID, primary_key=True, autoincrement=True),  # order of insertion
    Column("call_id", String(36)),
    Column("also_id", String(36)),  # a second id it is indexed under (a conflict's other notice)
    Column("data", LargeBinary, nullable=False),  # the exact bytes to hash: canonical JSON
)

ledger_bundles = Table(
    "ledger_bundles",
    metadata,
    # Sequenced entries, 256 to a row, in the C2SP entry-bundle encoding (each entry a
    # big-endian uint16 length and its bytes); the last bundle grows until full.
    Column("idx", BigInteger, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

ledger_calls = Table(
    "ledger_calls",
    metadata,
    # Which entries are about which call or notice (`call_id` holds either's id): what
    # `openline prove` looks up.
    Column("call_id", String(36), primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    sqlite_with_rowid=False,  # one B-tree, not a table and an index: one insert per entry
)

ledger_tiles = Table(
    "ledger_tiles",
    metadata,
    Column("level", Integer, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hashes", LargeBinary, nullable=False),  # up to 256 node hashes of 32 bytes; only ever grows
)

ledger_state = Table(
    "ledger_state",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1: the row the integrator locks
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

ledger_checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),  # our signed note, with each peer's cosignature added
    Column("signed_at", BigInteger, nullable=False),
    Column("cosigned_by", Text, nullable=False, server_default=""),  # peers, comma-separated
)

ledger_peers = Table(
    "ledger_peers",
    metadata,
    Column("peer", String(63), ForeignKey("peers.name"), primary_key=True),
    # Our log as this peer has witnessed it: the `old` size of our next add-checkpoint.
    Column("cosigned_size", BigInteger, nullable=False, server_default="0"),
    Column("cosigned_at", BigInteger),
    Column("next_attempt_at", BigInteger),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    # Their log as we have witnessed it: the latest checkpoint of theirs that we cosigned.
    Column("witnessed_size", BigInteger, nullable=False, server_default="0"),
    Column("witnessed_root", LargeBinary),
    Column("witnessed_note", Text),  # their signed note plus our cosignature
    Column("witnessed_at", BigInteger),
)

ledger_evidence = Table(
    "ledger_evidence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("peer", String(63), nullable=False),
    Column("kind", String(16), nullable=False),  # fork, truncation, rewrite
    Column("received_at", BigInteger, nullable=False),
    Column("request", Text, nullable=False),  # the add-checkpoint body, its signature verified
    Column("contradicts", Text),  # the note of theirs we had cosigned
    Column("detail", Text, nullable=False),
)

# Deconfliction notices (see docs/notices.md) ---------------------------------------------

notices = Table(
    "notices",
    metadata,
    Column("id", String(36), primary_key=True),  # this version's id, the same on both stations
    Column("series", String(36), nullable=False),  # the first version's id
    Column("version", Integer, nullable=False),
    Column("supersedes", String(36)),  # the version this one amends
    Column("line_id", String(32), ForeignKey("lines.id"), nullable=False),
    Column("peer", String(63), nullable=False),
    Column("direction", String(3), nullable=False),  # "out": we announced it; "in": they did
    Column("category", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("envelope_id", String(36)),  # the envelope that carried it: its text; None for a draft
    Column("draft_body", LargeBinary),  # a draft's document, sealed to our own key, until sent
    Column("removes", String(36)),  # a removal notice: the protected site notice it removes
    Column("removed_by", String(36)),  # a removed site: the removal notice that was acknowledged
    Column("created_by", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("starts_at", BigInteger, nullable=False),  # its first volume's start
    Column("ends_at", BigInteger),  # its last volume's end; None: open-ended (a protected site)
    Column("deadline_at", BigInteger),  # by when the receiving side must acknowledge it
    Column("sent_at", BigInteger),
    Column("delivered_at", BigInteger),
    Column("acknowledged_at", BigInteger),
    Column("acknowledged_by", String(128)),
    Column("rejected_at", BigInteger),
    Column("withdrawn_at", BigInteger),
    Column("amended_at", BigInteger),
    Column("expired_at", BigInteger),
    Column("removed_at", BigInteger),
    Column("discarded_at", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
    # The margins its line held when this station last checked it for conflicts (JSON):
    # what its conflicts were decided under, as the line's margins may change.
    Column("conflict_margins", Text),
    Index("ix_notices_state", "state", "ends_at"),
    Index("ix_notices_created", "created_at", "id"),  # the newest first: the notices page
    Index("ix_notices_series", "series", "version"),
    Index("ix_notices_removes", "removes"),
)

notice_volumes = Table(
    "notice_volumes",
    metadata,
    Column("notice_id", String(36), ForeignKey("notices.id"), primary_key=True),
    Column("n", Integer, primary_key=True),  # 1-based, as errors and conflicts name it
    Column("volume4d", Text, nullable=False),  # ASTM F3548 Volume4D JSON, as on the wire
    Column("alt_lower_m", Float, nullable=False),
    Column("alt_upper_m", Float, nullable=False),
    Column("start_at", BigInteger, nullable=False),
    Column("end_at", BigInteger),
    # A box around the outline in n-vector space (the unit normal's x, y, z), never too
    # small: the database narrows candidates by space too, with plain comparisons that
    # have no seam at the antimeridian and no trouble at a pole.
    *(Column(f"n{axis}_{end}", Float, nullable=False) for axis in "xyz" for end in ("min", "max")),
    Index("ix_notice_volumes_time", "start_at", "end_at"),
)

notice_conflicts = Table(
    "notice_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notice_a", String(36), nullable=False),  # the new (or amended) notice
    Column("volume_a", Integer, nullable=False),
    Column("notice_b", String(36), nullable=False),  # the active notice it conflicts with
    Column("volume_b", Integer, nullable=False),
    Column("time_start", BigInteger, nullable=False),
    Column("time_end", BigInteger),
    Column("alt_lower_m", Float, nullable=False),
    Column("alt_upper_m", Float, nullable=False),
    Column("detected_at", BigInteger, nullable=False),
    # The margins the pair was found under (JSON): a notice's own `conflict_margins` are
    # those of its last check, which may have narrowed since. None: found before 0021.
    Column("margins", Text),
    UniqueConstraint("notice_a", "volume_a", "notice_b", "volume_b", name="uq_notice_conflicts_pair"),
    Index("ix_notice_conflicts_b", "notice_b"),  # a notice's conflicts, whichever side it was
)
