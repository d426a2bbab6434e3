package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/migrations"
	"github.com/orderflow/orderflow/shared/shard"
)

func newMigrateCmd() *cobra.Command {
	var topologyPath string
	var createDatabases bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the schema migrations to every shard of the topology",
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := shard.LoadTopology(topologyPath)
			if err != nil {
				return err
			}
			for _, s := range topo.Shards {
				v, err := migrateShard(cmd.Context(), s, createDatabases)
				if err != nil {
					return fmt.Errorf("shard %s: %w", s.Name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: schema version %d\n", s.Name, v)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&topologyPath, "topology", "", "topology file (JSON: shards and epochs)")
	cmd.Flags().BoolVar(&createDatabases, "create-databases", false, "create each shard's database when it does not exist")
	_ = cmd.MarkFlagRequired("topology")
	return cmd
}

func migrateShard(ctx context.Context, s shard.Spec, createDatabase bool) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pool := shard.PoolConfig{MaxOpenConns: 2, MaxIdleConns: 1, ConnMaxLifetime: time.Minute, DialTimeout: 5 * time.Second, IOTimeout: time.Minute}
	if createDatabase {
		cfg, err := mysql.ParseDSN(s.DSN)
		if err != nil {
			return 0, fmt.Errorf("parsing dsn: %w", err)
		}
		if cfg.DBName == "" {
			return 0, fmt.Errorf("dsn names no database")
		}
		dbName := cfg.DBName
		cfg.DBName = ""
		server, err := shard.OpenDB(cfg.FormatDSN(), pool)
		if err != nil {
			return 0, err
		}
		defer server.Close()
		if _, err := server.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+dbName+"`"); err != nil {
			return 0, fmt.Errorf("creating database %s: %w", dbName, err)
		}
	}
	db, err := shard.OpenDB(s.DSN, pool)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return migrations.Up(ctx, db)
}
