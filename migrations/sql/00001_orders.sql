-- +goose Up
-- Orders of one shard. Every statement here must run on MariaDB 10.11 (local
-- infrastructure) and MySQL 8.4 (docker-compose), so only syntax both share.
CREATE TABLE orders (
    order_no         BIGINT       NOT NULL,
    request_id       VARCHAR(64)  NOT NULL,
    -- SHA-256 of the PlaceOrder request, so a reused requestId with a different
    -- body is refused instead of silently returning the first order.
    request_hash     BINARY(32)   NOT NULL,
    user_id          VARCHAR(64)  NOT NULL,
    shop_id          VARCHAR(64)  NOT NULL,
    status           VARCHAR(16)  NOT NULL,
    total_amount     BIGINT       NOT NULL,
    delivery_address VARCHAR(512) NOT NULL,
    cancel_reason    VARCHAR(512) NULL,
    version          INT          NOT NULL,
    placed_at        DATETIME(6)  NOT NULL,
    updated_at       DATETIME(6)  NOT NULL,
    PRIMARY KEY (order_no),
    UNIQUE KEY uq_orders_request_id (request_id),
    KEY ix_orders_placed_at (placed_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE order_items (
    order_no   BIGINT       NOT NULL,
    line_no    SMALLINT     NOT NULL,
    menu_id    VARCHAR(64)  NOT NULL,
    name       VARCHAR(200) NOT NULL,
    quantity   INT          NOT NULL,
    unit_price BIGINT       NOT NULL,
    PRIMARY KEY (order_no, line_no)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE order_status_history (
    order_no   BIGINT       NOT NULL,
    version    INT          NOT NULL,
    status     VARCHAR(16)  NOT NULL,
    changed_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (order_no, version)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per (epoch, shard) this server serves: the next order number of the
-- shard's residue class. Instances reserve blocks from it, so placing an order
-- needs no round trip to a central sequence.
CREATE TABLE order_no_sequence (
    epoch_first_order_no BIGINT NOT NULL,
    shard_index          INT    NOT NULL,
    shard_count          INT    NOT NULL,
    next_order_no        BIGINT NOT NULL,
    PRIMARY KEY (epoch_first_order_no)
) ENGINE = InnoDB;

-- +goose Down
DROP TABLE order_no_sequence;
DROP TABLE order_status_history;
DROP TABLE order_items;
DROP TABLE orders;
