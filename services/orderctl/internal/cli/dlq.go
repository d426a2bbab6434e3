package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/orderflow/orderflow/services/orderctl/internal/dlq"
	"github.com/orderflow/orderflow/services/orderctl/internal/progress"
	"github.com/orderflow/orderflow/shared/kafkax"
)

func newDLQCmd(s Settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "The projector's dead letters: list, count and show them, replay them through the projector's code (audited)",
		Long: `The projector sends events that keep failing to the dead-letter topic. These commands read it
(without consuming it), show why each entry failed, and replay entries by re-projecting their orders
in-process: re-read from the shard, write the document (version-guarded), publish the external
events. Worked-off entries are marked in MongoDB (dlq_resolved) and every replay is audited
(dlq_replays); the topic itself is never written.`,
	}
	cmd.AddCommand(newDLQListCmd(s), newDLQCountCmd(s), newDLQShowCmd(s), newDLQReplayCmd(s))
	return cmd
}

// dlqFilterFlags bind the flags that select dead letters.
type dlqFilterFlags struct {
	reasons      []string
	since, until string
	orders       []int64
	all          bool
}

func (ff *dlqFilterFlags) bind(cmd *cobra.Command, reasonFlag string) {
	if reasonFlag == "reason" {
		// --dlq-reason, replay's spelling (its --reason is the why), works here too.
		cmd.Flags().SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
			if name == "dlq-reason" {
				name = "reason"
			}
			return pflag.NormalizedName(name)
		})
	}
	cmd.Flags().StringSliceVar(&ff.reasons, reasonFlag, nil, "only these reasons: "+strings.Join(kafkax.DLQReasons(), ", "))
	cmd.Flags().StringVar(&ff.since, "since", "", "dead-lettered at or after (RFC 3339, or a duration ago such as 2h)")
	cmd.Flags().StringVar(&ff.until, "until", "", "dead-lettered before (RFC 3339, or a duration ago)")
	cmd.Flags().Int64SliceVar(&ff.orders, "orders", nil, "only these order numbers (comma-separated)")
	cmd.Flags().BoolVar(&ff.all, "all", false, "include entries already worked off")
}

func (ff *dlqFilterFlags) filter() (dlq.Filter, error) {
	f := dlq.Filter{Reasons: ff.reasons, Orders: ff.orders, All: ff.all}
	var err error
	if f.Since, err = parseTime(ff.since); err != nil {
		return f, fmt.Errorf("--since: %w", err)
	}
	if f.Until, err = parseTime(ff.until); err != nil {
		return f, fmt.Errorf("--until: %w", err)
	}
	return f, f.Validate()
}

type dlqConn struct {
	service *dlq.Service
	store   *dlq.Store
	close   func()
}

// openDLQ connects the DLQ reader and its state in MongoDB.
func openDLQ(cmd *cobra.Command, f *readSideFlags) (*dlqConn, error) {
	reader, err := dlq.NewReader(f.brokerList(), f.dlqTopic)
	if err != nil {
		return nil, err
	}
	client, err := connectMongo(cmd, f)
	if err != nil {
		_ = reader.Close()
		return nil, err
	}
	store := dlq.NewStore(client.Database(f.database))
	return &dlqConn{service: dlq.NewService(reader, store), store: store, close: func() {
		_ = client.Disconnect(context.WithoutCancel(cmd.Context()))
		_ = reader.Close()
	}}, nil
}

// summary is the last line of stdout: machine-readable counts.
func dlqSummary(w io.Writer, p dlq.Page, shown int) {
	fmt.Fprintf(w, "dlq: matched=%d unresolved=%d shown=%d\n", p.Matched, p.Unresolved, shown)
}

func newDLQListCmd(s Settings) *cobra.Command {
	var (
		rf                readSideFlags
		ff                dlqFilterFlags
		pageSize, limit   int
		pageToken         string
		asJSON, failIfAny bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters not yet worked off (--all: every one), paged; the last line is a summary",
		RunE: func(cmd *cobra.Command, _ []string) error {
			size := pageSize
			if limit > 0 {
				size = limit
			}
			page, err := listDLQ(cmd, &rf, &ff, size, pageToken)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeEntriesJSON(out, page.Entries); err != nil {
					return err
				}
			} else {
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ENTRY\tREASON\tSOURCE\tEVENT\tORDER\tAGE\tSTATUS\tERROR")
				now := time.Now()
				for _, e := range page.Entries {
					fmt.Fprintf(w, "%s\t%s\t%s/%d/%d\t%s\t%d\t%s\t%s\t%s\n", e.Ref, e.Reason, e.SourceTopic, e.SourcePartition, e.SourceOffset,
						e.EventType, e.OrderNo, now.Sub(e.At).Round(time.Second), status(e), oneLine(e.Error, 60))
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			if page.NextToken != "" && limit == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: --page-token %s\n", page.NextToken)
			}
			dlqSummary(out, page, len(page.Entries))
			return unresolvedError(page, failIfAny)
		},
	}
	rf.bind(cmd, s, true)
	ff.bind(cmd, "reason")
	cmd.Flags().IntVar(&pageSize, "page-size", 100, "entries per page")
	cmd.Flags().StringVar(&pageToken, "page-token", "", "the token the previous page printed")
	cmd.Flags().IntVar(&limit, "limit", 0, "print at most this many entries, without paging")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the entries as JSON lines")
	cmd.Flags().BoolVar(&failIfAny, "fail-if-any", false, "exit non-zero when any selected entry is not worked off")
	return cmd
}

func newDLQCountCmd(s Settings) *cobra.Command {
	var (
		rf        readSideFlags
		ff        dlqFilterFlags
		failIfAny bool
	)
	cmd := &cobra.Command{
		Use:   "count",
		Short: "Print one line: how many dead letters match and how many are not worked off",
		RunE: func(cmd *cobra.Command, _ []string) error {
			page, err := countDLQ(cmd, &rf, &ff)
			if err != nil {
				return err
			}
			dlqSummary(cmd.OutOrStdout(), page, 0)
			return unresolvedError(page, failIfAny)
		},
	}
	rf.bind(cmd, s, true)
	ff.bind(cmd, "reason")
	cmd.Flags().BoolVar(&failIfAny, "fail-if-any", false, "exit non-zero when any selected entry is not worked off")
	return cmd
}

// countDLQ counts the dead letters the filter flags select: without a
// filter from the offsets and the worked-off marks alone, as the
// projector's orderflow_dlq_unresolved_messages gauge does; with one by
// reading every entry.
func countDLQ(cmd *cobra.Command, rf *readSideFlags, ff *dlqFilterFlags) (dlq.Page, error) {
	filter, err := ff.filter()
	if err != nil {
		return dlq.Page{}, err
	}
	if !filter.Unfiltered() {
		return listDLQ(cmd, rf, ff, 1, "")
	}
	c, err := openDLQ(cmd, rf)
	if err != nil {
		return dlq.Page{}, err
	}
	defer c.close()
	counts, err := c.service.Count(cmd.Context())
	if err != nil {
		return dlq.Page{}, err
	}
	page := dlq.Page{Matched: int(counts.Unresolved), Unresolved: int(counts.Unresolved)}
	if filter.All {
		page.Matched = int(counts.Retained)
	}
	return page, nil
}

// listDLQ reads one page of the dead letters the filter flags select (its
// counts cover every match).
func listDLQ(cmd *cobra.Command, rf *readSideFlags, ff *dlqFilterFlags, size int, token string) (dlq.Page, error) {
	filter, err := ff.filter()
	if err != nil {
		return dlq.Page{}, err
	}
	c, err := openDLQ(cmd, rf)
	if err != nil {
		return dlq.Page{}, err
	}
	defer c.close()
	return c.service.List(cmd.Context(), filter, size, token)
}

// unresolvedError fails a --fail-if-any run that matched entries not yet
// worked off.
func unresolvedError(page dlq.Page, failIfAny bool) error {
	if failIfAny && page.Unresolved > 0 {
		return fmt.Errorf("%d dead letters not worked off", page.Unresolved)
	}
	return nil
}

func status(e dlq.Entry) string {
	if e.Resolution == nil {
		return "open"
	}
	return e.Resolution.Resolution
}

type entryJSON struct {
	Entry       string            `json:"entry"`
	Reason      string            `json:"reason"`
	Source      string            `json:"source"`
	EventType   string            `json:"eventType"`
	EventID     string            `json:"eventId,omitempty"`
	OrderNo     int64             `json:"orderNo"`
	At          time.Time         `json:"deadLetteredAt"`
	Attempts    int               `json:"attempts"`
	Error       string            `json:"error"`
	DecodeError string            `json:"decodeError,omitempty"`
	Status      string            `json:"status"`
	Headers     map[string]string `json:"headers,omitempty"`
}

func toJSON(e dlq.Entry, headers bool) entryJSON {
	j := entryJSON{Entry: e.Ref.String(), Reason: e.Reason, Source: fmt.Sprintf("%s/%d/%d", e.SourceTopic, e.SourcePartition, e.SourceOffset),
		EventType: e.EventType, EventID: e.EventID, OrderNo: e.OrderNo, At: e.At, Attempts: e.Attempts, Error: e.Error,
		DecodeError: e.DecodeError, Status: status(e)}
	if headers {
		j.Headers = map[string]string{}
		for _, h := range e.Headers {
			j.Headers[h.Key] = h.Value
		}
	}
	return j
}

func writeEntriesJSON(w io.Writer, entries []dlq.Entry) error {
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(toJSON(e, false)); err != nil {
			return err
		}
	}
	return nil
}

func newDLQShowCmd(s Settings) *cobra.Command {
	var rf readSideFlags
	cmd := &cobra.Command{
		Use:   "show PARTITION/OFFSET",
		Short: "Show one dead letter: its headers, the decoded event, whether it was worked off",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := dlq.ParseRef(args[0])
			if err != nil {
				return err
			}
			c, err := openDLQ(cmd, &rf)
			if err != nil {
				return err
			}
			defer c.close()
			e, err := c.service.Get(cmd.Context(), ref)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "entry:          %s/%s\nreason:         %s\nerror:          %s\nattempts:       %d\n", e.Topic, e.Ref, e.Reason, e.Error, e.Attempts)
			fmt.Fprintf(w, "source:         %s/%d/%d\ndead-lettered:  %s\nkey:            %s\n", e.SourceTopic, e.SourcePartition, e.SourceOffset,
				e.At.Format(time.RFC3339Nano), e.Key)
			fmt.Fprintf(w, "order:          %d\nevent type:     %s\nevent id:       %s\n", e.OrderNo, e.EventType, e.EventID)
			if e.Event != nil {
				fmt.Fprintf(w, "event:          order %d version %d, %s, occurred %s, traceparent %s\n", e.Event.GetOrderNo(), e.Event.GetOrderVersion(),
					e.Event.GetEventType(), e.Event.GetOccurredAt().AsTime().Format(time.RFC3339Nano), e.Event.GetTraceparent())
			} else {
				fmt.Fprintf(w, "event:          undecodable (%s)\n", e.DecodeError)
			}
			if r := e.Resolution; r != nil {
				fmt.Fprintf(w, "worked off:     %s at %s by %s (replay %s: %s)\n", r.Resolution, r.At.Format(time.RFC3339), r.Actor, r.ReplayID, r.Reason)
			} else {
				fmt.Fprintln(w, "worked off:     no")
			}
			fmt.Fprintln(w, "headers:")
			for _, h := range e.Headers {
				fmt.Fprintf(w, "  %s: %s\n", h.Key, h.Value)
			}
			return nil
		},
	}
	rf.bind(cmd, s, true)
	return cmd
}

func newDLQReplayCmd(s Settings) *cobra.Command {
	var (
		rf              readSideFlags
		ff              dlqFilterFlags
		mf              metricsFlags
		dryRun, discard bool
		reason, actor   string
		batch           int
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Re-project the selected dead letters' orders and mark them worked off (audited)",
		Long: `replay selects dead letters like list does (not yet worked off, unless --all; --dlq-reason,
--since, --until, --orders), re-projects their orders through the projector's code in batches and
marks each batch worked off after it was applied. An outage of the shards, MongoDB or Kafka is
waited out with back-off up to --max-wait per batch; then replay stops with the error and leaves the
rest unresolved. Undecodable entries cannot be re-projected: they are reported, and --discard
marks them worked off (with the reason). Every run, dry or not, is recorded in dlq_replays.`,
		Example: `  orderctl dlq replay --dry-run --dlq-reason retries_exhausted --reason "shard-1 was down"
  orderctl dlq replay --dlq-reason retries_exhausted --reason "shard-1 was down"
  orderctl dlq replay --dlq-reason undecodable --discard --reason "garbage from a test producer"`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reason == "" {
				return errors.New("--reason is required (why; it is recorded in the audit)")
			}
			filter, err := ff.filter()
			if err != nil {
				return err
			}
			c, err := openDLQ(cmd, &rf)
			if err != nil {
				return err
			}
			defer c.close()
			rs, err := rf.open(cmd.Context(), cmdLogger(cmd))
			if err != nil {
				return err
			}
			defer rs.close()
			replayer, err := dlq.NewReplayer(c.service, c.store, rs.applier, batch, time.Now)
			if err != nil {
				return err
			}
			metrics, stopMetrics, err := mf.start(cmd, progress.CommandDLQReplay)
			if err != nil {
				return err
			}
			defer stopMetrics()
			var bar interface{ Set(int) error }
			reported := 0
			res, err := replayer.Replay(cmd.Context(), dlq.ReplayRequest{Filter: filter, DryRun: dryRun, Discard: discard, Reason: reason, Actor: actor},
				func(done, total int) {
					if bar == nil {
						bar = newBar(cmd.ErrOrStderr(), int64(total), "replaying")
						metrics.Plan(int64(total))
					}
					_ = bar.Set(done)
					metrics.Done(done - reported)
					reported = done
				})
			out := cmd.OutOrStdout()
			for _, ref := range res.Undecodable {
				verb := "not replayed (undecodable; --discard marks it worked off)"
				if discard {
					verb = "discarded (undecodable)"
					if dryRun {
						verb = "would be discarded (undecodable)"
					}
				}
				fmt.Fprintf(out, "%s: %s\n", ref, verb)
			}
			o := res.Outcome
			fmt.Fprintf(out, "dlq replay: id=%s dry-run=%t entries=%d replayed=%d order-missing=%d undecodable=%d discarded=%d documents=%d external=%d\n",
				res.ID, res.DryRun, res.Entries, o.Replayed, o.Missing, o.Undecodable, o.Discarded, o.Projected, o.External)
			return err
		},
	}
	rf.bind(cmd, s, true)
	ff.bind(cmd, "dlq-reason")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only count what would be replayed (audited too)")
	cmd.Flags().BoolVar(&discard, "discard", false, "mark the selected undecodable entries worked off")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in dlq_replays and with every mark; required)")
	cmd.Flags().StringVar(&actor, "actor", defaultActor(), "who (recorded in dlq_replays)")
	cmd.Flags().IntVar(&batch, "batch", 100, "orders re-projected at a time")
	mf.bind(cmd)
	return cmd
}
