-- chatbase-inbox: one row per verified delivery. Times are milliseconds since the
-- Unix epoch, read from the database's clock (so several hosts share one clock).
CREATE TABLE chatbase_inbox_deliveries (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- What duplicates are detected by: never holds customer data (a SHA-256).
    delivery_key  TEXT    NOT NULL UNIQUE,
    chatbot_id    TEXT,
    event_type    TEXT    NOT NULL,
    -- The raw body exactly as signed; NULL once retention removed it.
    body          BYTEA,
    received_at   BIGINT  NOT NULL,
    state         TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'processing', 'processed', 'dead')),
    -- Attempts started (the one in progress included).
    attempts      INTEGER NOT NULL DEFAULT 0,
    -- A pending delivery is not claimed before this time (backoff).
    available_at  BIGINT  NOT NULL,
    -- The lease of a processing delivery, and its fencing token (bumped at every claim).
    locked_until  BIGINT,
    lease_token   BIGINT  NOT NULL DEFAULT 0,
    -- Why the last attempt failed: a fixed reason or an error's type name, no customer data.
    last_error    TEXT,
    -- When it was processed or declared dead.
    finished_at   BIGINT
);

CREATE INDEX chatbase_inbox_ready ON chatbase_inbox_deliveries (available_at)
    WHERE state = 'pending';
CREATE INDEX chatbase_inbox_leased ON chatbase_inbox_deliveries (locked_until)
    WHERE state = 'processing';
CREATE INDEX chatbase_inbox_finished ON chatbase_inbox_deliveries (state, finished_at)
    WHERE state IN ('processed', 'dead');
CREATE INDEX chatbase_inbox_state ON chatbase_inbox_deliveries (state, id);
