// Package orderprojector is the module of the order projector: the Kafka
// consumer that re-reads each order from its shard and upserts one MongoDB
// document per order. Its code arrives with the projector's implementation.
package orderprojector
