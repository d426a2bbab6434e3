module github.com/orderflow/orderflow/tests

go 1.26.0
