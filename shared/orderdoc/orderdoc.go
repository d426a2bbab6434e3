// Package orderdoc is the read side's contract: the one MongoDB document per
// order that the projector writes and the query service reads, its
// collection, and the indexes the queries need.
package orderdoc

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection holds the order documents.
const Collection = "orders"

// Item is one line of an order.
type Item struct {
	MenuID    string `bson:"menuId"`
	Name      string `bson:"name"`
	Quantity  int32  `bson:"quantity"`
	UnitPrice int64  `bson:"unitPrice"`
}

// StatusChange is one entry of the status history.
type StatusChange struct {
	Status    string    `bson:"status"`
	Version   int32     `bson:"version"`
	ChangedAt time.Time `bson:"changedAt"`
}

// Document is an order as the read side keeps it: everything the queries
// need, aggregated from the order's rows on its shard, as of Version.
type Document struct {
	OrderNo         int64          `bson:"_id"`
	UserID          string         `bson:"userId"`
	ShopID          string         `bson:"shopId"`
	Status          string         `bson:"status"`
	Items           []Item         `bson:"items"`
	TotalAmount     int64          `bson:"totalAmount"`
	DeliveryAddress string         `bson:"deliveryAddress"`
	PlacedAt        time.Time      `bson:"placedAt"`
	UpdatedAt       time.Time      `bson:"updatedAt"`
	StatusHistory   []StatusChange `bson:"statusHistory"`
	CancelReason    string         `bson:"cancelReason"`
	// Version is the order's version this document reflects; a write never
	// replaces a document with an older version.
	Version int32 `bson:"version"`
	// Shard is where the order lives.
	Shard string `bson:"shard"`
	// ProjectedAt is when the projector wrote this version.
	ProjectedAt time.Time `bson:"projectedAt"`
	// ExternalVersion is the highest version whose external event was
	// published before this document was written: the projector publishes a
	// batch's external events first and records them with the document in
	// the same write, so a crash in between republishes (same event ids)
	// rather than losing an event.
	ExternalVersion int32 `bson:"externalVersion"`
}

// Index names, so a test can assert they exist.
const (
	IndexUserPlaced       = "userId_placedAt_id"
	IndexShopPlaced       = "shopId_placedAt_id"
	IndexShopStatusPlaced = "shopId_status_placedAt_id"
	IndexIDVersion        = "id_version"
)

// Indexes are what the list queries need: a user's orders newest first, a
// shop's orders newest first, optionally by status (the order number breaks
// ties, so cursor pages are stable); and (_id, version) for the projector's
// compare-and-set on the version it read, which an index on _id alone serves
// on MongoDB but not on the wire-compatible stand-in, which otherwise scans
// the collection for a query on two fields.
func Indexes() []mongo.IndexModel {
	return []mongo.IndexModel{
		{Keys: bson.D{{Key: "_id", Value: 1}, {Key: "version", Value: 1}},
			Options: options.Index().SetName(IndexIDVersion).SetUnique(true)},
		{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "placedAt", Value: -1}, {Key: "_id", Value: -1}},
			Options: options.Index().SetName(IndexUserPlaced)},
		{Keys: bson.D{{Key: "shopId", Value: 1}, {Key: "placedAt", Value: -1}, {Key: "_id", Value: -1}},
			Options: options.Index().SetName(IndexShopPlaced)},
		{Keys: bson.D{{Key: "shopId", Value: 1}, {Key: "status", Value: 1}, {Key: "placedAt", Value: -1}, {Key: "_id", Value: -1}},
			Options: options.Index().SetName(IndexShopStatusPlaced)},
	}
}

// EnsureIndexes creates the indexes; creating an existing index again is a
// no-op, so every process may call it at start.
func EnsureIndexes(ctx context.Context, coll *mongo.Collection) error {
	if _, err := coll.Indexes().CreateMany(ctx, Indexes()); err != nil {
		return fmt.Errorf("creating indexes on %s: %w", coll.Name(), err)
	}
	return nil
}
