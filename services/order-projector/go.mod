module github.com/orderflow/orderflow/services/order-projector

go 1.26.0
