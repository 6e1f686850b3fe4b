-- Web console sessions: the cookie's token is kept only as its SHA-256, so a copy of this table
-- signs nobody in. A session ends at logout, after `idle` without a request, or at `expires_at_ms`.
CREATE TABLE console_sessions (
    token_sha256  TEXT   PRIMARY KEY NOT NULL,
    login         TEXT   NOT NULL,
    identity_json TEXT   NOT NULL,  -- who signed in: e-mail, DN, roles, groups (iaas_access::Identity)
    csrf          TEXT   NOT NULL,  -- the token every form of this session carries
    created_at_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    checked_at_ms BIGINT NOT NULL,  -- when the directory last vouched for the account and its roles
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at_ms);
