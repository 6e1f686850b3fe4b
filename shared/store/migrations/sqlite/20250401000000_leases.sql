-- VM leases: when a VM expires and what the sweep has done about it. Times are unix ms.
CREATE TABLE leases (
    vm_moref            TEXT    PRIMARY KEY NOT NULL,
    vm_name             TEXT    NOT NULL,
    owner_user          TEXT    NOT NULL,   -- Slack user id; '' when unknown
    created_at_ms       BIGINT  NOT NULL,
    expires_at_ms       BIGINT  NOT NULL,
    -- active → powered_off → deleted; held (a reminder could not be delivered); excluded; closed
    state               TEXT    NOT NULL,
    state_reason        TEXT    NOT NULL DEFAULT '',
    powered_off_at_ms   BIGINT,
    claimed_by          TEXT,
    claimed_until_ms    BIGINT  NOT NULL DEFAULT 0,
    updated_at_ms       BIGINT  NOT NULL
);
CREATE INDEX leases_by_expiry ON leases (state, expires_at_ms);
CREATE INDEX leases_by_owner ON leases (owner_user, expires_at_ms);
CREATE INDEX leases_by_name ON leases (vm_name);

-- Each reminder (N days before expiry) goes out once per lease term.
CREATE TABLE lease_reminders (
    vm_moref       TEXT    NOT NULL,
    expires_at_ms  BIGINT  NOT NULL,   -- the term it was sent for; extending starts a new term
    days_before    BIGINT  NOT NULL,
    sent_at_ms     BIGINT  NOT NULL,
    PRIMARY KEY (vm_moref, expires_at_ms, days_before)
);
