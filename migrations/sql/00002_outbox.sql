-- +goose Up
-- Internal events waiting to be (or already) published by the outbox relay.
-- Zero payload: identifiers only; consumers read the order from its shard.
CREATE TABLE outbox (
    id              BIGINT        NOT NULL AUTO_INCREMENT,
    event_id        CHAR(36)      NOT NULL,
    event_type      VARCHAR(32)   NOT NULL,
    order_no        BIGINT        NOT NULL,
    order_version   INT           NOT NULL,
    occurred_at     DATETIME(6)   NOT NULL,
    traceparent     VARCHAR(64)   NOT NULL DEFAULT '',
    status          VARCHAR(16)   NOT NULL DEFAULT 'PENDING',
    attempts        INT           NOT NULL DEFAULT 0,
    last_error      VARCHAR(1024) NULL,
    -- Set by the relay after a failed attempt: the row is not claimed again
    -- before this time (exponential backoff with jitter).
    next_attempt_at DATETIME(6)   NULL,
    published_at    DATETIME(6)   NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_outbox_event_id (event_id),
    -- The relay claims PENDING rows in id order.
    KEY ix_outbox_status_id (status, id),
    -- Cleanup deletes old PUBLISHED rows; operators list by status and time.
    KEY ix_outbox_status_published_at (status, published_at),
    KEY ix_outbox_status_occurred_at (status, occurred_at),
    KEY ix_outbox_order (order_no, order_version)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE outbox;
