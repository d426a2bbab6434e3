// Package orderquery is the module of the query service: single orders and
// per-user and per-shop lists served from MongoDB. Its code arrives with the
// service's implementation.
package orderquery
