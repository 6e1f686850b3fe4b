-- Changes the scale function could not make on a running VM without hot-add: applied when
-- vCenter reports the VM powered off. Targets are absolute; NULL leaves a value as it is.
CREATE TABLE pending_changes (
    vm_moref       TEXT    PRIMARY KEY NOT NULL,
    vm_name        TEXT    NOT NULL,
    cpus           BIGINT,
    memory_mb      BIGINT,
    reason         TEXT    NOT NULL,
    created_at_ms  BIGINT  NOT NULL
);

-- Alarm actions wait this long before acting on the same thing again (key e.g. scale:cpu:vm-42).
CREATE TABLE cooldowns (
    key          TEXT    PRIMARY KEY NOT NULL,
    until_ms     BIGINT  NOT NULL
);
