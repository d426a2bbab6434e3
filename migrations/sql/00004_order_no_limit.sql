-- +goose Up
-- Set by `orderctl shards add` on the sequences of the epoch it closes: the
-- first number of the new epoch. No instance reserves numbers at or above it,
-- even one that has not loaded the new topology yet.
ALTER TABLE order_no_sequence ADD COLUMN limit_order_no BIGINT NULL;

-- +goose Down
ALTER TABLE order_no_sequence DROP COLUMN limit_order_no;
