module github.com/orderflow/orderflow/services/outbox-relay

go 1.26.0
