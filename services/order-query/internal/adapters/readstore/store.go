// Package readstore reads the order documents from MongoDB (or the
// wire-compatible stand-in of the local infrastructure). It uses only plain
// finds with equality and range filters, a sort and a limit, which both
// servers support.
package readstore

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/services/order-query/internal/app"
	"github.com/orderflow/orderflow/shared/orderdoc"
)

// Store implements app.Store over the orders collection.
type Store struct {
	coll   *mongo.Collection
	tracer trace.Tracer
}

// NewStore returns a store over db's orders collection. Every read is a
// client span of tracer, a child of the request's span.
func NewStore(db *mongo.Database, tracer trace.Tracer) *Store {
	return &Store{coll: db.Collection(orderdoc.Collection), tracer: tracer}
}

// startSpan starts the span of one read; end records its outcome. A read
// outside any request (the minVersion poll that serves every waiting
// request at once) starts no trace of its own.
func (s *Store) startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, func(error) {}
	}
	attrs = append(attrs, attribute.String("db.system.name", "mongodb"), attribute.String("db.collection.name", orderdoc.Collection))
	ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil && !errors.Is(err, app.ErrNotFound) { // an absent document is an answer
			span.RecordError(err)
			span.SetStatus(codes.Error, name+" failed")
		}
		span.End()
	}
}

// Collection is the collection the store reads.
func (s *Store) Collection() *mongo.Collection { return s.coll }

// EnsureIndexes creates the indexes the list queries need; it is idempotent.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	return classify(ctx, orderdoc.EnsureIndexes(ctx, s.coll))
}

// Get returns the document of one order, or app.ErrNotFound.
func (s *Store) Get(ctx context.Context, orderNo int64) (_ *orderdoc.Document, err error) {
	ctx, end := s.startSpan(ctx, "find order document", attribute.Int64("orderflow.order_no", orderNo))
	defer func() { end(err) }()
	var doc orderdoc.Document
	err = s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: orderNo}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, app.ErrNotFound
	}
	if err != nil {
		return nil, classify(ctx, fmt.Errorf("finding order document: %w", err))
	}
	return &doc, nil
}

// Documents reads the documents of the given orders in one query.
func (s *Store) Documents(ctx context.Context, orderNos []int64) (_ map[int64]*orderdoc.Document, err error) {
	ctx, end := s.startSpan(ctx, "find order documents", attribute.Int("orderflow.orders", len(orderNos)))
	defer func() { end(err) }()
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: orderNos}}}})
	if err != nil {
		return nil, classify(ctx, fmt.Errorf("finding order documents: %w", err))
	}
	var docs []orderdoc.Document
	if err := cur.All(ctx, &docs); err != nil {
		return nil, classify(ctx, fmt.Errorf("reading order documents: %w", err))
	}
	out := make(map[int64]*orderdoc.Document, len(docs))
	for i := range docs {
		out[docs[i].OrderNo] = &docs[i]
	}
	return out, nil
}

// List returns a page of documents, newest first (orderdoc.ListSort).
func (s *Store) List(ctx context.Context, q app.ListQuery) (_ []orderdoc.Document, err error) {
	ctx, end := s.startSpan(ctx, "list order documents", attribute.Int("orderflow.limit", q.Limit))
	defer func() { end(err) }()
	cur, err := s.coll.Find(ctx, listFilter(q), options.Find().SetSort(orderdoc.ListSort()).SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, classify(ctx, fmt.Errorf("finding order documents: %w", err))
	}
	docs := make([]orderdoc.Document, 0, q.Limit)
	if err := cur.All(ctx, &docs); err != nil {
		return nil, classify(ctx, fmt.Errorf("reading order documents: %w", err))
	}
	return docs, nil
}

// listFilter selects the query's orders and, after a position, the ones
// that sort after it in orderdoc.ListSort: placed in an earlier millisecond;
// or in the same one and earlier within it; or at the same microsecond with
// a lower order number. A document without placedAtMicros (written before
// the field existed) sorts after every document of its millisecond that has
// it, so after a position that has it those documents all follow; after a
// position without it only those with a lower order number do.
func listFilter(q app.ListQuery) bson.D {
	var f bson.D
	if q.UserID != "" {
		f = append(f, bson.E{Key: "userId", Value: q.UserID})
	}
	if q.ShopID != "" {
		f = append(f, bson.E{Key: "shopId", Value: q.ShopID})
	}
	if q.Status != "" {
		f = append(f, bson.E{Key: "status", Value: q.Status})
	}
	if q.After != nil {
		at := bson.NewDateTimeFromTime(q.After.PlacedAt)
		lt := func(v any) bson.D { return bson.D{{Key: "$lt", Value: v}} }
		// Equality with null matches a missing field.
		noMicros := bson.E{Key: "placedAtMicros", Value: nil}
		after := bson.A{bson.D{{Key: "placedAt", Value: lt(at)}}}
		if u := q.After.PlacedAtMicros; u > 0 {
			after = append(after,
				bson.D{{Key: "placedAt", Value: at}, {Key: "placedAtMicros", Value: lt(u)}},
				bson.D{{Key: "placedAt", Value: at}, {Key: "placedAtMicros", Value: u}, {Key: "_id", Value: lt(q.After.OrderNo)}},
				bson.D{{Key: "placedAt", Value: at}, noMicros},
			)
		} else {
			after = append(after, bson.D{{Key: "placedAt", Value: at}, noMicros, {Key: "_id", Value: lt(q.After.OrderNo)}})
		}
		f = append(f, bson.E{Key: "$or", Value: after})
	}
	return f
}

// classify marks errors that mean the server cannot be reached, so that
// callers can tell an outage from a bug. When the caller's own context has
// ended, that is the cause, whatever the driver reports. (A failed server
// selection wraps the driver's internal deadline, which is not the caller's.)
func classify(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	if mongo.IsNetworkError(err) || errors.Is(err, mongo.ErrClientDisconnected) ||
		errors.As(err, new(topology.ServerSelectionError)) {
		return fmt.Errorf("%w: %w", app.ErrUnavailable, err)
	}
	return err
}
