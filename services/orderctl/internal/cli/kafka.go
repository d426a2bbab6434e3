package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/shared/kafkax"
)

func newKafkaCmd(s Settings) *cobra.Command {
	cmd := &cobra.Command{Use: "kafka", Short: "Manage the Kafka topics"}
	var (
		brokers     string
		partitions  int32
		replication int16
	)
	create := &cobra.Command{
		Use:   "create-topics TOPIC...",
		Short: "Create topics that do not exist yet",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, topics []string) error {
			if partitions < 1 {
				return fmt.Errorf("--partitions must be at least 1")
			}
			if err := kafkax.CreateTopics(strings.Split(brokers, ","), partitions, replication, topics...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "topics ready: %s (%d partitions)\n", strings.Join(topics, ", "), partitions)
			return nil
		},
	}
	create.Flags().StringVar(&brokers, "brokers", s.KafkaBrokers, "Kafka bootstrap servers, comma-separated ($ORDERFLOW_KAFKA_BROKERS)")
	create.Flags().Int32Var(&partitions, "partitions", 12, "partitions of each new topic")
	create.Flags().Int16Var(&replication, "replication", 1, "replication factor of each new topic")
	cmd.AddCommand(create)
	return cmd
}
