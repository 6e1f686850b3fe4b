-- Hand-overs accepted by the in-process dispatch of `iaas serve`, kept from before the ack until
-- the function has run them, so a crash between the ack and the run loses nothing: a restart
-- runs what never started and reports what was cut short.
CREATE TABLE pending_dispatches (
    id             TEXT   PRIMARY KEY NOT NULL,  -- the invocation id
    function       TEXT   NOT NULL,
    body           TEXT   NOT NULL,              -- the invocation, as signed (re-signed when replayed)
    accepted_at_ms BIGINT NOT NULL
);
