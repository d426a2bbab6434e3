module github.com/orderflow/orderflow/services/order-query

go 1.26.0
