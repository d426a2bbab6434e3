module github.com/orderflow/orderflow/services/orderctl

go 1.26.0
