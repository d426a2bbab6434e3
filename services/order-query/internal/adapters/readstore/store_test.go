package readstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/orderflow/orderflow/services/order-query/internal/adapters/readstore"
	"github.com/orderflow/orderflow/services/order-query/internal/app"
	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/orderdoc"
	"github.com/orderflow/orderflow/shared/projection"
	"github.com/orderflow/orderflow/shared/projection/source"
	"github.com/orderflow/orderflow/shared/testinfra"
)

var at = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func store(t *testing.T, docs ...orderdoc.Document) *readstore.Store {
	t.Helper()
	s := readstore.NewStore(testinfra.MongoDatabase(t), noop.NewTracerProvider().Tracer(""))
	if err := s.EnsureIndexes(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if _, err := s.Collection().InsertOne(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestGet(t *testing.T) {
	t.Parallel()
	s := store(t, orderdoc.Document{OrderNo: 5, UserID: "u", Status: "PLACED", Version: 1, PlacedAt: at.Add(123 * time.Millisecond)})
	d, err := s.Get(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if d.OrderNo != 5 || d.UserID != "u" || d.Version != 1 || !d.PlacedAt.Equal(at.Add(123*time.Millisecond)) {
		t.Errorf("Get = %+v", d)
	}
	if _, err := s.Get(context.Background(), 6); !errors.Is(err, app.ErrNotFound) {
		t.Errorf("missing document: %v, want app.ErrNotFound", err)
	}
}

func TestListOrdersAndStartsAfterAPosition(t *testing.T) {
	t.Parallel()
	// Orders 10..14 share one millisecond; 20 is newer, 1 older; 30 belongs
	// to someone else; 15 is in another status.
	var docs []orderdoc.Document
	for _, no := range []int64{12, 10, 14, 11, 13} {
		docs = append(docs, orderdoc.Document{OrderNo: no, UserID: "u", ShopID: "s", Status: "PLACED", PlacedAt: at})
	}
	docs = append(docs,
		orderdoc.Document{OrderNo: 20, UserID: "u", ShopID: "s", Status: "PLACED", PlacedAt: at.Add(time.Millisecond)},
		orderdoc.Document{OrderNo: 1, UserID: "u", ShopID: "s", Status: "PLACED", PlacedAt: at.Add(-time.Millisecond)},
		orderdoc.Document{OrderNo: 30, UserID: "v", ShopID: "t", Status: "PLACED", PlacedAt: at},
		orderdoc.Document{OrderNo: 15, UserID: "u", ShopID: "s", Status: "ACCEPTED", PlacedAt: at},
	)
	s := store(t, docs...)
	tests := []struct {
		name string
		q    app.ListQuery
		want []int64
	}{
		{"a user's orders", app.ListQuery{UserID: "u", Limit: 100}, []int64{20, 15, 14, 13, 12, 11, 10, 1}},
		{"limited", app.ListQuery{UserID: "u", Limit: 3}, []int64{20, 15, 14}},
		{"after a tie", app.ListQuery{UserID: "u", Limit: 3, After: &app.Position{PlacedAt: at, OrderNo: 13}}, []int64{12, 11, 10}},
		{"after the last of a tie", app.ListQuery{UserID: "u", Limit: 3, After: &app.Position{PlacedAt: at, OrderNo: 10}}, []int64{1}},
		{"after the newest", app.ListQuery{UserID: "u", Limit: 2, After: &app.Position{PlacedAt: at.Add(time.Millisecond), OrderNo: 20}}, []int64{15, 14}},
		{"after the oldest", app.ListQuery{UserID: "u", Limit: 2, After: &app.Position{PlacedAt: at.Add(-time.Millisecond), OrderNo: 1}}, nil},
		{"a shop's orders", app.ListQuery{ShopID: "s", Limit: 100}, []int64{20, 15, 14, 13, 12, 11, 10, 1}},
		{"a shop's orders of one status", app.ListQuery{ShopID: "s", Status: "ACCEPTED", Limit: 100}, []int64{15}},
		{"a status after a position", app.ListQuery{ShopID: "s", Status: "PLACED", Limit: 2, After: &app.Position{PlacedAt: at, OrderNo: 12}}, []int64{11, 10}},
		{"another shop", app.ListQuery{ShopID: "t", Limit: 100}, []int64{30}},
		{"nobody's", app.ListQuery{UserID: "w", Limit: 100}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			docs, err := s.List(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, d := range docs {
				got = append(got, d.OrderNo)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("List = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1; no ping first, so the store sees the failure.
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:1").
		SetServerSelectionTimeout(200 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	s := readstore.NewStore(client.Database("none"), noop.NewTracerProvider().Tracer(""))
	if _, err := s.Get(context.Background(), 1); !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("Get: %v, want app.ErrUnavailable", err)
	}
	if _, err := s.List(context.Background(), app.ListQuery{UserID: "u", Limit: 1}); !errors.Is(err, app.ErrUnavailable) {
		t.Errorf("List: %v, want app.ErrUnavailable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx, 1); errors.Is(err, app.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context: %v, want context.Canceled and not unavailable", err)
	}
}

// Documents reads the awaited orders in one query and leaves out the absent.
func TestDocuments(t *testing.T) {
	t.Parallel()
	s := store(t,
		orderdoc.Document{OrderNo: 7, UserID: "u", Status: "PLACED", Version: 1, PlacedAt: at},
		orderdoc.Document{OrderNo: 8, UserID: "u", Status: "ACCEPTED", Version: 2, PlacedAt: at})
	docs, err := s.Documents(context.Background(), []int64{7, 8, 9})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[7] == nil || docs[7].Version != 1 || docs[8] == nil || docs[8].Status != "ACCEPTED" || docs[9] != nil {
		t.Errorf("documents %v: want orders 7 (version 1) and 8 (ACCEPTED) only", docs)
	}
}

// Orders placed within one millisecond list in placement order, newest
// first, whatever their order numbers (handed out in blocks per shard, so not
// in placement order); documents written before placedAtMicros existed come
// after those that have it within their millisecond, by order number; and
// paging through the list, at every page size, neither skips nor repeats.
func TestListsKeepPlacementOrderWithinOneMillisecond(t *testing.T) {
	t.Parallel()
	// placed is what the projector writes for an order placed at at+offset.
	placed := func(no int64, offset time.Duration) orderdoc.Document {
		return projection.Document(source.Order{OrderNo: no, Shard: "shard-0", UserID: "u", ShopID: "s", Status: "PLACED",
			Version: 1, PlacedAt: at.Add(offset), UpdatedAt: at.Add(offset)}, at.Add(time.Second))
	}
	// legacy is a document of before placedAtMicros: the millisecond only.
	legacy := func(no int64, offset time.Duration) orderdoc.Document {
		return orderdoc.Document{OrderNo: no, UserID: "u", ShopID: "s", Status: "PLACED", Version: 1, PlacedAt: at.Add(offset)}
	}
	docs := []orderdoc.Document{
		placed(20, 100*time.Microsecond), // first in the millisecond
		placed(15, 500*time.Microsecond),
		placed(10, 900*time.Microsecond), // last in it, lowest number
		legacy(30, 0),
		legacy(5, 0),
		placed(1, time.Millisecond+time.Microsecond), // the next millisecond
		placed(40, -999*time.Microsecond),            // the previous one
		legacy(41, -time.Millisecond),
	}
	if docs[0].PlacedAtMicros != at.UnixMicro()+100 || !docs[0].PlacedAt.Equal(at.Add(100*time.Microsecond)) {
		t.Fatalf("projection.Document placedAtMicros %d, want %d", docs[0].PlacedAtMicros, at.UnixMicro()+100)
	}
	s := store(t, docs...)
	want := []int64{1, 10, 15, 20, 30, 5, 40, 41}

	got, err := s.List(context.Background(), app.ListQuery{UserID: "u", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if nos := orderNos(got); !slices.Equal(nos, want) {
		t.Fatalf("List = %v, want %v", nos, want)
	}

	svc, err := app.New(s, nil, auth.Unprotected{}, app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	lists := []struct {
		name string
		page func(size int32, token string) (*app.Page, error)
	}{
		{"user", func(size int32, token string) (*app.Page, error) {
			return svc.ListUserOrders(context.Background(), "u", size, token)
		}},
		{"shop", func(size int32, token string) (*app.Page, error) {
			return svc.ListShopOrders(context.Background(), "s", "", size, token)
		}},
	}
	for _, list := range lists {
		for size := int32(1); size <= int32(len(want)); size++ {
			var all []int64
			token := ""
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatalf("%s, page size %d: the page tokens never end", list.name, size)
				}
				page, err := list.page(size, token)
				if err != nil {
					t.Fatalf("%s, page size %d: %v", list.name, size, err)
				}
				all = append(all, orderNos(page.Orders)...)
				if token = page.NextPageToken; token == "" {
					break
				}
			}
			if !slices.Equal(all, want) {
				t.Errorf("%s list, page size %d: %v, want %v", list.name, size, all, want)
			}
		}
	}
}

// EnsureIndexes builds the list indexes on placedAtMicros and drops the
// ones from before it, which the queries no longer use.
func TestEnsureIndexesReplacesTheLegacyListIndexes(t *testing.T) {
	t.Parallel()
	db := testinfra.MongoDatabase(t)
	coll := db.Collection(orderdoc.Collection)
	ctx := context.Background()
	legacy := mongo.IndexModel{Keys: bson.D{{Key: "userId", Value: 1}, {Key: "placedAt", Value: -1}, {Key: "_id", Value: -1}},
		Options: options.Index().SetName(orderdoc.LegacyIndexes[0])}
	if _, err := coll.Indexes().CreateOne(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	s := readstore.NewStore(db, noop.NewTracerProvider().Tracer(""))
	for range 2 { // idempotent
		if err := s.EnsureIndexes(ctx); err != nil {
			t.Fatal(err)
		}
	}
	specs, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, spec := range specs {
		names = append(names, spec.Name)
	}
	for _, name := range orderdoc.LegacyIndexes {
		if slices.Contains(names, name) {
			t.Errorf("legacy index %s is still there: %v", name, names)
		}
	}
	for _, name := range []string{orderdoc.IndexUserPlaced, orderdoc.IndexShopPlaced, orderdoc.IndexShopStatusPlaced, orderdoc.IndexIDVersion} {
		if !slices.Contains(names, name) {
			t.Errorf("index %s is missing: %v", name, names)
		}
	}
}

func orderNos(docs []orderdoc.Document) []int64 {
	var out []int64
	for _, d := range docs {
		out = append(out, d.OrderNo)
	}
	return out
}
