-- Signed Slack requests (slash commands, button presses) seen inside Slack's replay window, so
-- a captured request sent again is refused on every replica. Rows past their window are pruned.
CREATE TABLE seen_requests (
    key           TEXT   PRIMARY KEY NOT NULL,  -- Slack's signature: one per timestamp and body
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX seen_requests_expiry ON seen_requests (expires_at_ms);
