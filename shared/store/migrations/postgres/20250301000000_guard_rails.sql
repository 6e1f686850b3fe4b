-- The audit trail: append-only, one row per decision or outcome (commands and button presses).
CREATE TABLE audit (
    seq          BIGSERIAL PRIMARY KEY,
    at_ms        BIGINT  NOT NULL,
    request_id   TEXT    NOT NULL,
    actor        TEXT    NOT NULL,   -- Slack user id
    command      TEXT    NOT NULL,   -- as the user typed it, normalized ("power off app-web-01")
    vm           TEXT,               -- the VM it targets, when it has one
    stage        TEXT    NOT NULL,   -- 'gateway' (decision before the ack) or the function's name
    decision     TEXT    NOT NULL CHECK (decision IN ('allowed', 'denied', 'done', 'failed')),
    reason       TEXT    NOT NULL,
    duration_ms  BIGINT
);
CREATE INDEX audit_by_time ON audit (at_ms DESC);
CREATE INDEX audit_by_actor ON audit (actor, at_ms DESC);
CREATE INDEX audit_by_vm ON audit (vm, at_ms DESC);

-- What each user holds against their quota: VMs they own plus reservations in flight.
-- Changed only by conditional UPDATEs, so two requests cannot both squeeze under a limit.
CREATE TABLE quota_usage (
    slack_user  TEXT    PRIMARY KEY NOT NULL,
    vms         BIGINT  NOT NULL DEFAULT 0,
    cpus        BIGINT  NOT NULL DEFAULT 0,
    memory_mb   BIGINT  NOT NULL DEFAULT 0
);

-- One change per VM at a time: the holder and when its claim lapses (a crashed worker's lock
-- does not last forever).
CREATE TABLE vm_locks (
    vm           TEXT    PRIMARY KEY NOT NULL,  -- lower-case VM name
    holder       TEXT    NOT NULL,              -- invocation id
    command      TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
