-- Confirmations for destructive commands (delete, resize with restart): bound to the user who
-- asked and to the VM's managed-object id, single use, expiring. Times are unix milliseconds.
CREATE TABLE confirmations (
    token         TEXT    PRIMARY KEY NOT NULL,
    function      TEXT    NOT NULL,
    slack_user    TEXT    NOT NULL,
    vm_moref      TEXT    NOT NULL,
    vm_name       TEXT    NOT NULL,
    args_json     TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL,
    used_at_ms    BIGINT,
    used_as       TEXT    -- 'confirm' or 'cancel'
);

-- VMs the bot created, cloned or deployed: who asked, when, and the lease asked for. The same
-- facts live on the VM as custom attributes; this is the bot's own record.
CREATE TABLE vms (
    vm_moref       TEXT    PRIMARY KEY NOT NULL,
    vm_name        TEXT    NOT NULL,
    owner_user     TEXT    NOT NULL,
    owner_email    TEXT,
    created_at_ms  BIGINT  NOT NULL,
    expires_at_ms  BIGINT,
    source         TEXT    NOT NULL,  -- 'create', 'clone:<vm>', 'deploy:<template>'
    invocation_id  TEXT    NOT NULL,
    deleted_at_ms  BIGINT
);

CREATE INDEX vms_by_owner ON vms (owner_user);
