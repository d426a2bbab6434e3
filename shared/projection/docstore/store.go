// Package docstore stores the order documents for the projector, every write
// guarded by the order's version.
package docstore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/projection"
)

// Store implements projection.Store.
type Store struct {
	coll *mongo.Collection
}

// NewStore returns a store over the orders collection of db.
func NewStore(db *mongo.Database) *Store {
	return &Store{coll: db.Collection(orderdoc.Collection)}
}

// Collection is the collection written.
func (s *Store) Collection() *mongo.Collection { return s.coll }

// States reads the version and external version of each document.
func (s *Store) States(ctx context.Context, orderNos []int64) (map[int64]projection.DocState, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: orderNos}}}},
		options.Find().SetProjection(bson.D{{Key: "version", Value: 1}, {Key: "externalVersion", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("finding documents: %w", err)
	}
	defer cur.Close(ctx)
	out := make(map[int64]projection.DocState, len(orderNos))
	for cur.Next(ctx) {
		var d struct {
			ID              int64 `bson:"_id"`
			Version         int32 `bson:"version"`
			ExternalVersion int32 `bson:"externalVersion"`
		}
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("decoding document: %w", err)
		}
		out[d.ID] = projection.DocState{Version: d.Version, ExternalVersion: d.ExternalVersion}
	}
	return out, cur.Err()
}

// duplicateKey is MongoDB's E11000.
const duplicateKey = 11000

// Write stores each document as a compare-and-set on the version the caller
// read: a new order is inserted, an existing one updated only while it is
// still at the version read (an exact-match filter the (_id, version) index
// serves). External-only marks raise externalVersion ($max: never down). All
// of it is one unordered bulk write, one round trip. It returns how many
// writes found the document changed meanwhile (another writer was there);
// the caller re-reads and tries again, and a newer document is never
// replaced by an older one.
func (s *Store) Write(ctx context.Context, w projection.Write) (int, error) {
	models := make([]mongo.WriteModel, 0, len(w.Docs)+len(w.ExternalOnly))
	updates := 0
	for _, d := range w.Docs {
		prev, exists := w.Read[d.OrderNo]
		if !exists || prev == 0 {
			models = append(models, mongo.NewInsertOneModel().SetDocument(d))
			continue
		}
		fields, err := setFields(d)
		if err != nil {
			return 0, err
		}
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: d.OrderNo}, {Key: "version", Value: prev}}).
			SetUpdate(bson.D{{Key: "$set", Value: fields}}))
		updates++
	}
	for no, v := range w.ExternalOnly {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: no}}).
			SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: "externalVersion", Value: v}}}}))
	}
	res, err := s.coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	conflicts, err := duplicates(err)
	if err != nil {
		return 0, err
	}
	if res != nil {
		// Every external-only mark matches (the document exists: it was
		// read as current), so unmatched filters are CAS conflicts.
		conflicts += updates + len(w.ExternalOnly) - int(res.MatchedCount)
	}
	return conflicts, nil
}

// setFields is the document without its _id (which a $set must not touch).
func setFields(d orderdoc.Document) (bson.D, error) {
	raw, err := bson.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encoding document %d: %w", d.OrderNo, err)
	}
	var all bson.D
	if err := bson.Unmarshal(raw, &all); err != nil {
		return nil, err
	}
	out := all[:0]
	for _, e := range all {
		if e.Key != "_id" {
			out = append(out, e)
		}
	}
	return out, nil
}

// duplicates counts the inserts that found the document already there and
// returns any other error.
func duplicates(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
		for _, we := range bwe.WriteErrors {
			if we.Code != duplicateKey {
				return 0, fmt.Errorf("writing documents: %w", err)
			}
		}
		return len(bwe.WriteErrors), nil
	}
	return 0, fmt.Errorf("writing documents: %w", err)
}
