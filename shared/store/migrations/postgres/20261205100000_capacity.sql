-- Datastore space held for creates, clones and deploys in flight (#12): reserved before the
-- vCenter task starts, deleted when the VM exists (vCenter then counts it) or the request
-- fails. A reservation whose worker died lapses at expires_at_ms, like a VM lock.
CREATE TABLE space_reservations (
    holder        TEXT   PRIMARY KEY NOT NULL,  -- invocation id
    datastore     TEXT   NOT NULL,              -- datastore moref, e.g. datastore-12
    bytes         BIGINT NOT NULL CHECK (bytes >= 0),
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX space_reservations_by_datastore ON space_reservations (datastore, expires_at_ms);

-- One row per datastore ever reserved on. A reservation updates its datastore's row first, so
-- on PostgreSQL the row lock orders reservations on one datastore: the next one counts what the
-- last one reserved (SQLite's BEGIN IMMEDIATE orders every write already).
CREATE TABLE space_datastores (
    datastore    TEXT   PRIMARY KEY NOT NULL,
    reservations BIGINT NOT NULL DEFAULT 0      -- reservations ever made here (the row's write)
);
