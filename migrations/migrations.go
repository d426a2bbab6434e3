// Package migrations holds the schema of every MySQL shard and applies it with
// goose. The SQL files are embedded, so every binary carries the schema it was
// built against.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"

	"github.com/pressly/goose/v3"
)

//go:embed sql/*.sql
var files embed.FS

// VersionTable is the table goose keeps the applied schema versions in, on
// every shard.
const VersionTable = "goose_db_version"

func provider(db *sql.DB) (*goose.Provider, error) {
	sqlFiles, err := fs.Sub(files, "sql")
	if err != nil {
		return nil, fmt.Errorf("opening embedded migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectMySQL, db, sqlFiles, goose.WithTableName(VersionTable))
	if err != nil {
		return nil, fmt.Errorf("creating migration provider: %w", err)
	}
	return p, nil
}

// Up applies every pending migration to one shard and returns the schema
// version the shard is at afterwards.
func Up(ctx context.Context, db *sql.DB) (int64, error) {
	p, err := provider(db)
	if err != nil {
		return 0, err
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("applying migrations: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return v, nil
}

// Latest is the highest schema version the embedded migrations define
// (the number each file name starts with).
func Latest() (int64, error) {
	entries, err := fs.Glob(files, "sql/*.sql")
	if err != nil {
		return 0, fmt.Errorf("listing migrations: %w", err)
	}
	var latest int64
	for _, name := range entries {
		v, err := goose.NumericComponent(path.Base(name))
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", name, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}
