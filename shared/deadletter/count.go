// Package deadletter defines how many of the projector's dead letters wait
// to be worked off, in one place for every reader: the projector's
// orderflow_dlq_unresolved_messages gauge, `orderctl dlq count` and
// `orderctl status` all count with Count, so they cannot disagree.
//
// The definition: a dead letter is a message retained in the dead-letter
// topic (between a partition's oldest and newest offsets); it is worked off
// when the read side's database holds its mark in ResolvedCollection (one
// document per entry, written by `orderctl dlq replay`). Marks of messages
// the topic no longer retains are not counted. The topic is never written
// by the readers, and no message is read: offsets and one count per
// partition are enough, so a scrape stays cheap however large the DLQ.
package deadletter

import (
	"context"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ResolvedCollection is the collection of the read side's database that
// holds one document per worked-off dead letter (_id
// "topic/partition/offset", with topic, partition and offset fields).
const ResolvedCollection = "dlq_resolved"

// Counts is the state of one dead-letter topic.
type Counts struct {
	// Retained is how many messages the topic holds, worked off or not.
	Retained int64
	// Unresolved is how many of them are not worked off.
	Unresolved int64
}

// Count counts topic's dead letters with client's offsets and the marks in
// resolved (the read side's ResolvedCollection).
func Count(ctx context.Context, client sarama.Client, resolved *mongo.Collection, topic string) (Counts, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return Counts{}, fmt.Errorf("listing the partitions of %s: %w", topic, err)
	}
	slices.Sort(parts)
	var c Counts
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return Counts{}, err
		}
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return Counts{}, fmt.Errorf("reading the oldest offset of %s/%d: %w", topic, p, err)
		}
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return Counts{}, fmt.Errorf("reading the newest offset of %s/%d: %w", topic, p, err)
		}
		if newest <= oldest {
			continue
		}
		done, err := resolved.CountDocuments(ctx, bson.D{
			{Key: "topic", Value: topic},
			{Key: "partition", Value: p},
			{Key: "offset", Value: bson.D{{Key: "$gte", Value: oldest}, {Key: "$lt", Value: newest}}},
		})
		if err != nil {
			return Counts{}, fmt.Errorf("counting the worked-off entries of %s/%d: %w", topic, p, err)
		}
		c.Retained += newest - oldest
		c.Unresolved += max(newest-oldest-done, 0)
	}
	return c, nil
}
