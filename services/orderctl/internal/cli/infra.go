package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/shared/kafkax"
	"github.com/orderflow/orderflow/shared/mongox"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/wait"
)

func newInfraCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "infra", Short: "Check the infrastructure"}
	cmd.AddCommand(newInfraWaitCmd())
	return cmd
}

// probe is one server to wait for: a real protocol request, and the log an
// operator should read when it never answers.
type probe struct {
	component string
	target    string
	log       string
	check     func(ctx context.Context) error
}

func newInfraWaitCmd() *cobra.Command {
	var (
		timeout           time.Duration
		mysqlDSNs, myLogs []string
		kafka, kafkaLog   string
		mongo, mongoLog   string
	)
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until every server answers a real request (SELECT 1, Kafka metadata, Mongo ping)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var probes []probe
			for i, dsn := range mysqlDSNs {
				p := probe{component: fmt.Sprintf("mysql shard %d", i), target: dsn, check: selectOne(dsn)}
				if i < len(myLogs) {
					p.log = myLogs[i]
				}
				probes = append(probes, p)
			}
			if kafka != "" {
				probes = append(probes, probe{component: "kafka", target: kafka, log: kafkaLog,
					check: func(ctx context.Context) error { return kafkax.Ping(ctx, []string{kafka}) }})
			}
			if mongo != "" {
				probes = append(probes, probe{component: "mongodb", target: mongo, log: mongoLog, check: pingMongo(mongo)})
			}
			return waitAll(cmd.Context(), probes, timeout, func(p probe, took time.Duration) {
				fmt.Fprintf(cmd.ErrOrStderr(), "[infra] %s ready (%s) after %.1f s\n", p.component, p.target, took.Seconds())
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for all servers")
	cmd.Flags().StringArrayVar(&mysqlDSNs, "mysql", nil, "MySQL/MariaDB DSN to wait for (repeatable)")
	cmd.Flags().StringArrayVar(&myLogs, "mysql-log", nil, "log file of the matching --mysql server (repeatable)")
	cmd.Flags().StringVar(&kafka, "kafka", "", "Kafka bootstrap server to wait for")
	cmd.Flags().StringVar(&kafkaLog, "kafka-log", "", "Kafka's log file")
	cmd.Flags().StringVar(&mongo, "mongo", "", "MongoDB URI to wait for")
	cmd.Flags().StringVar(&mongoLog, "mongo-log", "", "MongoDB's log file")
	return cmd
}

func waitAll(ctx context.Context, probes []probe, timeout time.Duration, ready func(probe, time.Duration)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	errs := make([]error, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			var last error
			for {
				attemptCtx, cancelAttempt := context.WithTimeout(ctx, 3*time.Second)
				last = p.check(attemptCtx)
				cancelAttempt()
				if last == nil {
					ready(p, time.Since(start))
					return
				}
				if !wait.Sleep(ctx, 200*time.Millisecond) {
					msg := fmt.Sprintf("%s (%s) not ready after %s: %v", p.component, p.target, timeout, last)
					if p.log != "" {
						msg += "; see its log: " + p.log
					}
					errs[i] = errors.New(msg)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func selectOne(dsn string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		db, err := shard.OpenDB(dsn, shard.PoolConfig{MaxOpenConns: 1, MaxIdleConns: 1, ConnMaxLifetime: time.Minute, DialTimeout: 2 * time.Second, IOTimeout: 2 * time.Second})
		if err != nil {
			return err
		}
		defer db.Close()
		var one int
		return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	}
}

func pingMongo(uri string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		client, err := mongox.Connect(ctx, uri)
		if err != nil {
			return err
		}
		return client.Disconnect(context.WithoutCancel(ctx))
	}
}
