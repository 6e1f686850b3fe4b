-- One row per invocation id: the idempotency claim and the audit record.
-- Times are unix milliseconds; args and outcome are JSON text.
CREATE TABLE invocations (
    id             TEXT    PRIMARY KEY NOT NULL,
    function       TEXT    NOT NULL,
    command        TEXT    NOT NULL,
    args_json      TEXT    NOT NULL,
    slack_user     TEXT    NOT NULL,
    channel        TEXT    NOT NULL,
    issued_at_ms   BIGINT  NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('running', 'done')),
    started_at_ms  BIGINT  NOT NULL,  -- first claim
    claimed_at_ms  BIGINT  NOT NULL,  -- current lease start
    finished_at_ms BIGINT,
    attempts       BIGINT  NOT NULL,
    outcome_json   TEXT
);

CREATE INDEX invocations_by_issued ON invocations (issued_at_ms DESC, id DESC);
CREATE INDEX invocations_by_user ON invocations (slack_user, issued_at_ms DESC);
