package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/orderflow/orderflow/services/orderctl/internal/readmodel"
)

// ReplayRequest says what to replay and why.
type ReplayRequest struct {
	Filter Filter
	// DryRun only counts; it is audited too.
	DryRun bool
	// Discard marks the undecodable entries selected worked off (they are
	// otherwise reported and left).
	Discard bool
	// Reason and Actor are recorded with the replay and every mark.
	Reason, Actor string
}

// ReplayResult is what a replay did (or would do).
type ReplayResult struct {
	// ID is the audit record's id.
	ID     string
	DryRun bool
	// Entries selected.
	Entries int
	// Outcome counts.
	Outcome AuditOutcome
	// Undecodable entries, which cannot be re-projected.
	Undecodable []Ref
}

// Replayer re-projects dead letters and marks them worked off.
type Replayer struct {
	service *Service
	store   *Store
	applier *readmodel.Applier
	batch   int
	now     func() time.Time
}

// NewReplayer returns a replayer applying batch orders at a time.
func NewReplayer(service *Service, store *Store, applier *readmodel.Applier, batch int, now func() time.Time) (*Replayer, error) {
	if service == nil || store == nil || applier == nil || now == nil {
		return nil, errors.New("dlq: service, store, applier and clock are required")
	}
	if batch < 1 {
		return nil, errors.New("dlq: the batch must be at least 1")
	}
	return &Replayer{service: service, store: store, applier: applier, batch: batch, now: now}, nil
}

// Replay re-projects the selected entries' orders in batches, marking each
// batch's entries worked off only after the batch was applied. An outage is
// waited out by the applier; when it gives up, the replay stops with the
// error, and the entries not applied stay unresolved. progress (may be nil)
// is told after every batch.
func (r *Replayer) Replay(ctx context.Context, req ReplayRequest, progress func(done, total int)) (ReplayResult, error) {
	if req.Reason == "" {
		return ReplayResult{}, errors.New("a reason is required (it is recorded in the audit)")
	}
	entries, err := r.service.Matching(ctx, req.Filter)
	if err != nil {
		return ReplayResult{}, err
	}
	audit := Audit{
		ID: uuid.NewString(), Actor: req.Actor, Reason: req.Reason, Topic: r.service.reader.Topic(),
		DryRun: req.DryRun, Discard: req.Discard, StartedAt: r.now().UTC(), Status: AuditRunning,
		Filter: AuditFilter{Reasons: req.Filter.Reasons, Since: req.Filter.Since, Until: req.Filter.Until,
			Orders: req.Filter.Orders, All: req.Filter.All},
		Entries: make([]string, 0, len(entries)),
	}
	res := ReplayResult{ID: audit.ID, DryRun: req.DryRun, Entries: len(entries)}
	var replayable []Entry
	for _, e := range entries {
		audit.Entries = append(audit.Entries, e.ID())
		if e.Replayable() {
			replayable = append(replayable, e)
		} else {
			res.Undecodable = append(res.Undecodable, e.Ref)
		}
	}
	res.Outcome.Undecodable = len(res.Undecodable)
	if err := r.store.StartAudit(ctx, audit); err != nil {
		return res, err
	}
	runErr := r.run(ctx, req, audit.ID, replayable, entries, &res, progress)
	audit.Outcome, audit.FinishedAt, audit.Status = res.Outcome, r.now().UTC(), AuditDone
	if runErr != nil {
		audit.Status, audit.Error = AuditFailed, runErr.Error()
	}
	// The outcome is recorded even when the command was interrupted.
	if err := r.store.FinishAudit(context.WithoutCancel(ctx), audit); err != nil {
		return res, errors.Join(runErr, err)
	}
	return res, runErr
}

func (r *Replayer) run(ctx context.Context, req ReplayRequest, id string, replayable, all []Entry, res *ReplayResult, progress func(done, total int)) error {
	if req.DryRun {
		res.Outcome.Replayed = len(replayable)
		if req.Discard {
			res.Outcome.Discarded = len(res.Undecodable)
		}
		return nil
	}
	done := 0
	for batch := range slices.Chunk(replayable, r.batch) {
		nos := make([]int64, len(batch))
		for i, e := range batch {
			nos[i] = e.OrderNo
		}
		applied, err := r.applier.Apply(ctx, nos)
		if err != nil {
			return fmt.Errorf("replaying %d dead letters (%d done before): %w", len(batch), done, err)
		}
		res.Outcome.Projected += applied.Projected
		res.Outcome.External += applied.External
		marks := make([]Resolution, len(batch))
		for i, e := range batch {
			how := ResolutionReplayed
			if slices.Contains(applied.Missing, e.OrderNo) {
				how = ResolutionMissing
				res.Outcome.Missing++
			} else {
				res.Outcome.Replayed++
			}
			marks[i] = r.mark(e, how, id, req)
		}
		if err := r.store.Resolve(ctx, marks); err != nil {
			return fmt.Errorf("after re-projecting: %w", err)
		}
		done += len(batch)
		if progress != nil {
			progress(done, len(all))
		}
	}
	if req.Discard {
		var marks []Resolution
		for _, e := range all {
			if !e.Replayable() {
				marks = append(marks, r.mark(e, ResolutionDiscarded, id, req))
			}
		}
		if err := r.store.Resolve(ctx, marks); err != nil {
			return err
		}
		res.Outcome.Discarded = len(marks)
		if progress != nil && len(marks) > 0 {
			progress(len(all), len(all))
		}
	}
	return nil
}

func (r *Replayer) mark(e Entry, how, id string, req ReplayRequest) Resolution {
	return Resolution{ID: e.ID(), Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, OrderNo: e.OrderNo,
		Resolution: how, ReplayID: id, Reason: req.Reason, Actor: req.Actor, At: r.now().UTC()}
}
