-- The Slack message a request's progress is shown in (chat.update needs its channel and ts),
-- so a resumed request goes on editing the same message. Empty when progress goes through
-- the response_url instead (no bot token).
ALTER TABLE decommissions ADD COLUMN progress_channel TEXT NOT NULL DEFAULT '';
ALTER TABLE decommissions ADD COLUMN progress_ts TEXT NOT NULL DEFAULT '';
