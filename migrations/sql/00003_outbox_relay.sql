-- +goose Up
-- Which relay instance works this shard's outbox. The relay holds a MySQL
-- named lock (GET_LOCK) on its connection for as long as it owns the shard;
-- this row only tells operators who that is.
CREATE TABLE outbox_relay_owner (
    lock_name    VARCHAR(64)  NOT NULL,
    relay_id     VARCHAR(128) NOT NULL,
    acquired_at  DATETIME(6)  NOT NULL,
    heartbeat_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (lock_name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Every operator replay: who, when, why, what was asked for, how many rows.
CREATE TABLE outbox_replay_audit (
    id          BIGINT        NOT NULL AUTO_INCREMENT,
    actor       VARCHAR(128)  NOT NULL,
    reason      VARCHAR(512)  NOT NULL,
    request     VARCHAR(2048) NOT NULL,
    dry_run     BOOLEAN       NOT NULL,
    row_count   BIGINT        NOT NULL,
    replayed_at DATETIME(6)   NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE outbox_replay_audit;
DROP TABLE outbox_relay_owner;
