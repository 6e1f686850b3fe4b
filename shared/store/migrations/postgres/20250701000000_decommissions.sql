-- Decommission requests: several VMs retired by one confirmed request, each through the
-- steps of its OS family's plan. Times are unix ms. The same schema for both backends.
CREATE TABLE decommissions (
    id                  TEXT    PRIMARY KEY NOT NULL,
    requester           TEXT    NOT NULL,   -- Slack user id
    ticket              TEXT    NOT NULL DEFAULT '',
    reason              TEXT    NOT NULL DEFAULT '',
    -- pending_confirmation → running → done | failed | cancelled
    state               TEXT    NOT NULL,
    -- Set by a cancel; the runner checks it between steps and while it waits.
    cancel_requested    BIGINT  NOT NULL DEFAULT 0,
    -- Where to report: the channel asked in, and the response_url of the press.
    channel             TEXT    NOT NULL DEFAULT '',
    response_url        TEXT    NOT NULL DEFAULT '',
    created_at_ms       BIGINT  NOT NULL,
    updated_at_ms       BIGINT  NOT NULL,
    finished_at_ms      BIGINT,
    -- The worker running it, until its lease lapses (a crashed worker's request is resumed).
    claimed_by          TEXT,
    claimed_until_ms    BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX decommissions_by_state ON decommissions (state, claimed_until_ms);
CREATE INDEX decommissions_by_requester ON decommissions (requester, created_at_ms);
CREATE INDEX decommissions_by_created ON decommissions (created_at_ms);

CREATE TABLE decommission_vms (
    request_id      TEXT    NOT NULL REFERENCES decommissions (id) ON DELETE CASCADE,
    vm_index        BIGINT  NOT NULL,
    vm_moref        TEXT    NOT NULL,
    vm_name         TEXT    NOT NULL,
    os_family       TEXT    NOT NULL,   -- linux | windows | other: which plan it got
    facts_json      TEXT    NOT NULL,   -- what the requester saw when confirming
    state           TEXT    NOT NULL,   -- pending | running | done | failed | cancelled
    PRIMARY KEY (request_id, vm_index)
);
CREATE INDEX decommission_vms_by_name ON decommission_vms (vm_name);

CREATE TABLE decommission_steps (
    request_id      TEXT    NOT NULL REFERENCES decommissions (id) ON DELETE CASCADE,
    vm_index        BIGINT  NOT NULL,
    step_index      BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    on_failure      TEXT    NOT NULL,   -- stop | warn
    -- The step's own settings as confirmed, so a policy change cannot alter a running request.
    config_json     TEXT    NOT NULL DEFAULT '{}',
    state           TEXT    NOT NULL,   -- pending | running | done | skipped | warning | failed
    message         TEXT    NOT NULL DEFAULT '',
    started_at_ms   BIGINT,
    finished_at_ms  BIGINT,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, vm_index, step_index)
);
