-- +goose Up
-- The request of a replay by ids lists up to 10,000 ids (outbox.MaxReplayIDs),
-- about 200 KB of JSON at 19 digits each: far more than VARCHAR(2048) or TEXT
-- (64 KB) hold. MEDIUMTEXT (16 MB) holds the largest accepted request on
-- MariaDB 10.11 and MySQL 8.4 alike.
ALTER TABLE outbox_replay_audit MODIFY COLUMN request MEDIUMTEXT NOT NULL;

-- +goose Down
-- Shortens the column back; fails on a shard that recorded a longer request.
ALTER TABLE outbox_replay_audit MODIFY COLUMN request VARCHAR(2048) NOT NULL;
