// Package outboxrelay is the module of the outbox relay: the process that
// moves PENDING outbox rows of every shard to Kafka and lets operators replay
// failed ones. Its code arrives with the relay's implementation.
package outboxrelay
