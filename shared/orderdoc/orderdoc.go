// Package orderdoc is the read side's contract: the one MongoDB document per
// order that the projector writes and the query service reads, its
// collection, and the indexes the queries need.
package orderdoc

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	OrderNo         int64     `bson:"_id"`
	UserID          string    `bson:"userId"`
	ShopID          string    `bson:"shopId"`
	Status          string    `bson:"status"`
	Items           []Item    `bson:"items"`
	TotalAmount     int64     `bson:"totalAmount"`
	DeliveryAddress string    `bson:"deliveryAddress"`
	PlacedAt        time.Time `bson:"placedAt"`
	// PlacedAtMicros is PlacedAt in Unix microseconds, the precision the
	// shards keep (placed_at is DATETIME(6)); PlacedAt, a BSON date, keeps
	// milliseconds. Lists sort by PlacedAt, then PlacedAtMicros, then order
	// number, so orders placed within one millisecond keep their placement
	// order (order numbers do not follow it: they are handed out in blocks
	// per shard). Documents written before the field existed lack it (0 when
	// decoded); they sort after those that have it within their millisecond,
	// and among themselves by order number, as before.
	PlacedAtMicros int64          `bson:"placedAtMicros,omitempty"`
	UpdatedAt      time.Time      `bson:"updatedAt"`
	StatusHistory  []StatusChange `bson:"statusHistory"`
	CancelReason   string         `bson:"cancelReason"`
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
	IndexUserPlaced       = "userId_placedAt_placedAtMicros_id"
	IndexShopPlaced       = "shopId_placedAt_placedAtMicros_id"
	IndexShopStatusPlaced = "shopId_status_placedAt_placedAtMicros_id"
	IndexIDVersion        = "id_version"
)

// LegacyIndexes are the list indexes from before PlacedAtMicros, which the
// list queries no longer use; EnsureIndexes drops them.
var LegacyIndexes = []string{"userId_placedAt_id", "shopId_placedAt_id", "shopId_status_placedAt_id"}

// ListSort is the order of every list, newest first: placedAt, then
// placedAtMicros within a millisecond, then the order number (unique, so
// cursor pages are stable). The list indexes end with these keys.
func ListSort() bson.D {
	return bson.D{{Key: "placedAt", Value: -1}, {Key: "placedAtMicros", Value: -1}, {Key: "_id", Value: -1}}
}

// Indexes are what the list queries need: a user's orders newest first, a
// shop's orders newest first, optionally by status (in ListSort order); and
// (_id, version) for the projector's compare-and-set on the version it
// read, which an index on _id alone serves on MongoDB but not on the
// wire-compatible stand-in, which otherwise scans the collection for a query
// on two fields.
func Indexes() []mongo.IndexModel {
	list := func(prefix ...string) bson.D {
		var keys bson.D
		for _, k := range prefix {
			keys = append(keys, bson.E{Key: k, Value: 1})
		}
		return append(keys, ListSort()...)
	}
	return []mongo.IndexModel{
		{Keys: bson.D{{Key: "_id", Value: 1}, {Key: "version", Value: 1}},
			Options: options.Index().SetName(IndexIDVersion).SetUnique(true)},
		{Keys: list("userId"), Options: options.Index().SetName(IndexUserPlaced)},
		{Keys: list("shopId"), Options: options.Index().SetName(IndexShopPlaced)},
		{Keys: list("shopId", "status"), Options: options.Index().SetName(IndexShopStatusPlaced)},
	}
}

// EnsureIndexes creates the indexes and drops the legacy ones; creating an
// existing index again is a no-op, so every process may call it at start.
func EnsureIndexes(ctx context.Context, coll *mongo.Collection) error {
	if _, err := coll.Indexes().CreateMany(ctx, Indexes()); err != nil {
		return fmt.Errorf("creating indexes on %s: %w", coll.Name(), err)
	}
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("listing indexes on %s: %w", coll.Name(), err)
	}
	for _, spec := range specs {
		if !slices.Contains(LegacyIndexes, spec.Name) {
			continue
		}
		// Another process may drop it at the same moment: a missing index is
		// what this wants.
		if err := coll.Indexes().DropOne(ctx, spec.Name); err != nil && !isIndexNotFound(err) {
			return fmt.Errorf("dropping legacy index %s on %s: %w", spec.Name, coll.Name(), err)
		}
	}
	return nil
}

// isIndexNotFound reports the server's answer to dropping an index that is
// not there (IndexNotFound, code 27).
func isIndexNotFound(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(27)
}
