package readmodel

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// CheckpointCollection holds one document per shard of the current (or last)
// rebuild: the read side's database, because the checkpoint belongs with the
// documents it describes and every operator's orderctl then sees the same
// one.
const CheckpointCollection = "readmodel_rebuild"

// Mark is how far a rebuild got on one shard.
type Mark struct {
	// Last is the highest order number done (order numbers go up page by page).
	Last int64
	// Done means the shard was finished.
	Done bool
}

// Checkpoints stores the marks of a rebuild.
type Checkpoints struct {
	coll *mongo.Collection
	now  func() time.Time
}

// NewCheckpoints returns the checkpoints in db.
func NewCheckpoints(db *mongo.Database, now func() time.Time) *Checkpoints {
	return &Checkpoints{coll: db.Collection(CheckpointCollection), now: now}
}

type checkpointDoc struct {
	Shard     string    `bson:"_id"`
	Key       string    `bson:"key"`
	Last      int64     `bson:"lastOrderNo"`
	Done      bool      `bson:"done"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

// Load returns the marks of the run selected by key; a checkpoint of a run
// with another selection is an error (resuming it would skip orders).
func (c *Checkpoints) Load(ctx context.Context, key string) (map[string]Mark, error) {
	cur, err := c.coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("reading the rebuild checkpoint: %w", err)
	}
	var docs []checkpointDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading the rebuild checkpoint: %w", err)
	}
	out := make(map[string]Mark, len(docs))
	for _, d := range docs {
		if d.Key != key {
			return nil, fmt.Errorf("the checkpoint is of a rebuild with other options (%s, not %s): run without --resume to start over", d.Key, key)
		}
		out[d.Shard] = Mark{Last: d.Last, Done: d.Done}
	}
	return out, nil
}

// Save records a shard's mark.
func (c *Checkpoints) Save(ctx context.Context, shard, key string, m Mark) error {
	_, err := c.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: shard}},
		checkpointDoc{Shard: shard, Key: key, Last: m.Last, Done: m.Done, UpdatedAt: c.now().UTC()},
		options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("saving the rebuild checkpoint of %s: %w", shard, err)
	}
	return nil
}

// Reset forgets every mark: a fresh run starts over.
func (c *Checkpoints) Reset(ctx context.Context) error {
	if _, err := c.coll.DeleteMany(ctx, bson.D{}); err != nil {
		return fmt.Errorf("resetting the rebuild checkpoint: %w", err)
	}
	return nil
}
