module github.com/orderflow/orderflow/services/order-command

go 1.26.0
