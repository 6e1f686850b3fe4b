-- Each state column takes only the values its enum declares (iaas-store: DecommissionState,
-- DecommissionVmState, DecommissionStepState, LeaseState; iaas-config: OnFailure). A value
-- added to an enum needs its constraint widened here, in a new migration.
--
-- SQLite cannot add a CHECK to a column, so the tables are rebuilt with their data and indexes.
-- Migrations run in a transaction with foreign keys on, where dropping decommissions would
-- cascade to its VMs and steps: those are set aside and dropped first, then put back.

CREATE TABLE decommission_vms_saved AS SELECT * FROM decommission_vms;
CREATE TABLE decommission_steps_saved AS SELECT * FROM decommission_steps;
DROP TABLE decommission_steps;
DROP TABLE decommission_vms;

CREATE TABLE decommissions_new (
    id                  TEXT    PRIMARY KEY NOT NULL,
    requester           TEXT    NOT NULL,
    ticket              TEXT    NOT NULL DEFAULT '',
    reason              TEXT    NOT NULL DEFAULT '',
    state               TEXT    NOT NULL CHECK (state IN ('pending_confirmation', 'running', 'done', 'failed', 'cancelled')),
    cancel_requested    BIGINT  NOT NULL DEFAULT 0,
    channel             TEXT    NOT NULL DEFAULT '',
    response_url        TEXT    NOT NULL DEFAULT '',
    created_at_ms       BIGINT  NOT NULL,
    updated_at_ms       BIGINT  NOT NULL,
    finished_at_ms      BIGINT,
    claimed_by          TEXT,
    claimed_until_ms    BIGINT  NOT NULL DEFAULT 0,
    progress_channel    TEXT    NOT NULL DEFAULT '',
    progress_ts         TEXT    NOT NULL DEFAULT ''
);
INSERT INTO decommissions_new (id, requester, ticket, reason, state, cancel_requested, channel, response_url, created_at_ms,
                               updated_at_ms, finished_at_ms, claimed_by, claimed_until_ms, progress_channel, progress_ts)
    SELECT id, requester, ticket, reason, state, cancel_requested, channel, response_url, created_at_ms,
           updated_at_ms, finished_at_ms, claimed_by, claimed_until_ms, progress_channel, progress_ts FROM decommissions;
DROP TABLE decommissions;
ALTER TABLE decommissions_new RENAME TO decommissions;
CREATE INDEX decommissions_by_state ON decommissions (state, claimed_until_ms);
CREATE INDEX decommissions_by_requester ON decommissions (requester, created_at_ms);
CREATE INDEX decommissions_by_created ON decommissions (created_at_ms);

CREATE TABLE decommission_vms (
    request_id      TEXT    NOT NULL REFERENCES decommissions (id) ON DELETE CASCADE,
    vm_index        BIGINT  NOT NULL,
    vm_moref        TEXT    NOT NULL,
    vm_name         TEXT    NOT NULL,
    os_family       TEXT    NOT NULL,
    facts_json      TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    PRIMARY KEY (request_id, vm_index)
);
INSERT INTO decommission_vms (request_id, vm_index, vm_moref, vm_name, os_family, facts_json, state)
    SELECT request_id, vm_index, vm_moref, vm_name, os_family, facts_json, state FROM decommission_vms_saved;
DROP TABLE decommission_vms_saved;
CREATE INDEX decommission_vms_by_name ON decommission_vms (vm_name);

CREATE TABLE decommission_steps (
    request_id      TEXT    NOT NULL REFERENCES decommissions (id) ON DELETE CASCADE,
    vm_index        BIGINT  NOT NULL,
    step_index      BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    on_failure      TEXT    NOT NULL CHECK (on_failure IN ('stop', 'warn')),
    config_json     TEXT    NOT NULL DEFAULT '{}',
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'skipped', 'warning', 'failed')),
    message         TEXT    NOT NULL DEFAULT '',
    started_at_ms   BIGINT,
    finished_at_ms  BIGINT,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, vm_index, step_index)
);
INSERT INTO decommission_steps (request_id, vm_index, step_index, kind, name, on_failure, config_json, state, message,
                                started_at_ms, finished_at_ms, attempts)
    SELECT request_id, vm_index, step_index, kind, name, on_failure, config_json, state, message,
           started_at_ms, finished_at_ms, attempts FROM decommission_steps_saved;
DROP TABLE decommission_steps_saved;

CREATE TABLE leases_new (
    vm_moref            TEXT    PRIMARY KEY NOT NULL,
    vm_name             TEXT    NOT NULL,
    owner_user          TEXT    NOT NULL,
    created_at_ms       BIGINT  NOT NULL,
    expires_at_ms       BIGINT  NOT NULL,
    state               TEXT    NOT NULL
        CHECK (state IN ('active', 'powered_off', 'deleted', 'held', 'excluded', 'closed', 'decommissioning', 'deleting')),
    state_reason        TEXT    NOT NULL DEFAULT '',
    powered_off_at_ms   BIGINT,
    claimed_by          TEXT,
    claimed_until_ms    BIGINT  NOT NULL DEFAULT 0,
    updated_at_ms       BIGINT  NOT NULL,
    -- While the sweep deletes the VM (state 'deleting'): its share of the owner's quota, given
    -- back with the change to 'deleted' even when the VM is already gone by then.
    share_cpus          BIGINT,
    share_memory_mb     BIGINT
);
INSERT INTO leases_new (vm_moref, vm_name, owner_user, created_at_ms, expires_at_ms, state, state_reason, powered_off_at_ms,
                        claimed_by, claimed_until_ms, updated_at_ms)
    SELECT vm_moref, vm_name, owner_user, created_at_ms, expires_at_ms, state, state_reason, powered_off_at_ms,
           claimed_by, claimed_until_ms, updated_at_ms FROM leases;
DROP TABLE leases;
ALTER TABLE leases_new RENAME TO leases;
CREATE INDEX leases_by_expiry ON leases (state, expires_at_ms);
CREATE INDEX leases_by_owner ON leases (owner_user, expires_at_ms);
CREATE INDEX leases_by_name ON leases (vm_name);
