package outbox

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/orderflow/orderflow/shared/sqlrows"
	"github.com/orderflow/orderflow/shared/validation"
)

// Page limits of List.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// cursor is what a page token carries: where the next page starts, and a
// fingerprint of the filter it belongs to.
type cursor struct {
	Shard   int    `json:"s"`
	AfterID int64  `json:"a"`
	Filter  string `json:"f"`
}

func (f Filter) fingerprint() string {
	b, _ := json.Marshal(f)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// List returns rows matching the filter, shard by shard in topology order and
// by id within a shard, and the token of the next page ("" on the last).
// Pages are keyed on ids, so rows inserted meanwhile never shift a page.
func (s *Store) List(ctx context.Context, f Filter, pageSize int, pageToken string) ([]Message, string, error) {
	topo := s.pools.Topology()
	if err := f.Validate(topo); err != nil {
		return nil, "", err
	}
	switch {
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize < 0 || pageSize > MaxPageSize:
		return nil, "", validation.Invalid("pageSize", fmt.Sprintf("must be between 1 and %d", MaxPageSize))
	}
	shards := f.shards(topo)
	cur := cursor{Filter: f.fingerprint()}
	if pageToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err != nil || json.Unmarshal(raw, &cur) != nil || cur.Filter != f.fingerprint() || cur.Shard < 0 || cur.Shard >= len(shards) {
			return nil, "", validation.Invalid("pageToken", "invalid page token (it belongs to another query, or is corrupt)")
		}
	}
	where, args := f.where()
	var out []Message
	for i := cur.Shard; i < len(shards); i++ {
		name := shards[i]
		after := int64(0)
		if i == cur.Shard {
			after = cur.AfterID
		}
		db, err := s.pools.DB(name)
		if err != nil {
			return nil, "", err
		}
		want := pageSize - len(out)
		rows, err := db.QueryContext(ctx, "SELECT "+Columns+" FROM outbox WHERE "+where+" AND id > ? ORDER BY id LIMIT ?",
			append(append([]any{}, args...), after, want+1)...)
		if err != nil {
			return nil, "", fmt.Errorf("listing %s: %w", name, shardClassify(name, err))
		}
		got, err := sqlrows.ScanAll(rows, func(rows *sql.Rows) (Message, error) { return ScanMessage(name, rows) })
		if err != nil {
			return nil, "", fmt.Errorf("listing %s: %w", name, shardClassify(name, err))
		}
		if len(got) > want {
			out = append(out, got[:want]...)
			return out, encode(cursor{Shard: i, AfterID: got[want-1].ID, Filter: cur.Filter}), nil
		}
		out = append(out, got...)
		if len(out) == pageSize && i+1 < len(shards) {
			return out, encode(cursor{Shard: i + 1, Filter: cur.Filter}), nil
		}
	}
	return out, "", nil
}

func encode(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}
