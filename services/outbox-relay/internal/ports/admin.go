// Package ports serves the relay's admin API (gRPC, and REST through the
// in-process gateway): outbox stats, listing, one message, and replay. Every
// call needs the shared admin token or an operator's JWT.
package ports

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/orderflow/orderflow/shared/auth/authgrpc"
	outboxv1 "github.com/orderflow/orderflow/shared/gen/orderflow/outbox/v1"
	"github.com/orderflow/orderflow/shared/outbox"
	"github.com/orderflow/orderflow/shared/server"
	"github.com/orderflow/orderflow/shared/shard"
	"github.com/orderflow/orderflow/shared/validation"
)

// Admin implements outboxv1.OutboxAdminServiceServer. Each call's deadline
// is set by the server's chain (server.Deadlines), not here.
type Admin struct {
	outboxv1.UnimplementedOutboxAdminServiceServer
	store   *outbox.Store
	replays ReplayCounter
	logger  *slog.Logger
}

// ReplayCounter counts the rows replays put back to PENDING, per shard, as
// they commit: a replay of many rows shows its progress in Prometheus.
type ReplayCounter interface {
	Replayed(shard string, rows int64)
}

// NewAdmin returns the admin API over the store, counting replayed rows in
// replays.
func NewAdmin(store *outbox.Store, replays ReplayCounter, logger *slog.Logger) *Admin {
	return &Admin{store: store, replays: replays, logger: logger}
}

// GetOutboxStats reports every shard.
func (a *Admin) GetOutboxStats(ctx context.Context, _ *outboxv1.GetOutboxStatsRequest) (*outboxv1.GetOutboxStatsResponse, error) {
	resp := &outboxv1.GetOutboxStatsResponse{}
	for _, s := range a.store.Stats(ctx) {
		st := &outboxv1.ShardStats{Shard: s.Shard, Pending: s.Pending, Published: s.Published, Failed: s.Failed,
			OldestPendingAgeSeconds: s.OldestPendingAge.Seconds(), Owner: s.Owner}
		if s.Err != nil {
			st.Error = s.Err.Error()
		}
		resp.Shards = append(resp.Shards, st)
	}
	return resp, nil
}

// ListOutboxMessages lists rows page by page.
func (a *Admin) ListOutboxMessages(ctx context.Context, req *outboxv1.ListOutboxMessagesRequest) (*outboxv1.ListOutboxMessagesResponse, error) {
	var v validation.Violations
	f := toFilter(&v, "", req.GetShard(), req.GetStatus(), req.GetEventType(), req.GetSince(), req.GetUntil())
	if err := v.Err(); err != nil {
		return nil, a.toStatus(ctx, err)
	}
	msgs, next, err := a.store.List(ctx, f, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	resp := &outboxv1.ListOutboxMessagesResponse{NextPageToken: next}
	for _, m := range msgs {
		resp.Messages = append(resp.Messages, ToProto(m))
	}
	return resp, nil
}

// GetOutboxMessage returns one row.
func (a *Admin) GetOutboxMessage(ctx context.Context, req *outboxv1.GetOutboxMessageRequest) (*outboxv1.GetOutboxMessageResponse, error) {
	m, err := a.store.Get(ctx, req.GetShard(), req.GetId())
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	return &outboxv1.GetOutboxMessageResponse{Message: ToProto(m)}, nil
}

// ReplayOutboxMessages puts rows back to PENDING.
func (a *Admin) ReplayOutboxMessages(ctx context.Context, req *outboxv1.ReplayOutboxMessagesRequest) (*outboxv1.ReplayOutboxMessagesResponse, error) {
	actor := req.GetActor()
	if actor == "" {
		actor = "admin-api"
		if p, ok := peer.FromContext(ctx); ok {
			actor += "@" + p.Addr.String()
		}
	}
	r := outbox.ReplayRequest{Shard: req.GetShard(), IDs: req.GetIds(), DryRun: req.GetDryRun(), Reason: req.GetReason(), Actor: actor}
	var v validation.Violations
	if f := req.GetFilter(); f != nil {
		// A filter given at all, even an empty one, is a second way of
		// naming rows; the store refuses the conditions it can see.
		if len(r.IDs) > 0 {
			v.Add("filter", "cannot be combined with ids: replay either the given rows or the rows a filter matches")
		}
		r.Filter = toFilter(&v, "filter.", f.GetShard(), f.GetStatus(), f.GetEventType(), f.GetSince(), f.GetUntil())
	}
	if err := v.Err(); err != nil {
		return nil, a.toStatus(ctx, err)
	}
	// A replay by filter reports each committed chunk; the rest (a replay
	// by ids, a shard's last chunk) is counted from the result, which
	// holds every shard that finished.
	counted := map[string]int64{}
	progress := func(shard string, done, _ int64) {
		if !r.DryRun {
			a.replays.Replayed(shard, done-counted[shard])
			counted[shard] = done
		}
	}
	res, err := a.store.Replay(ctx, r, progress)
	if !r.DryRun {
		for shard, n := range res.PerShard {
			a.replays.Replayed(shard, n-counted[shard])
		}
	}
	if err != nil {
		return nil, a.toStatus(ctx, err)
	}
	a.logger.InfoContext(ctx, "outbox replay", slog.String("actor", actor), slog.String("reason", r.Reason),
		slog.Bool("dry_run", res.DryRun), slog.Int64("rows", res.Total))
	return &outboxv1.ReplayOutboxMessagesResponse{Replayed: res.PerShard, Total: res.Total, DryRun: res.DryRun}, nil
}

func (a *Admin) toStatus(ctx context.Context, err error) error {
	var invalid *validation.Error
	switch {
	case errors.As(err, &invalid):
		return server.InvalidArgument(invalid.Error(), invalid.Violations)
	case errors.Is(err, outbox.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, shard.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "request deadline exceeded")
	default:
		// The chain's call log writes the cause, once.
		return server.Internal(err)
	}
}

// ToProto converts a row.
func ToProto(m outbox.Message) *outboxv1.OutboxMessage {
	out := &outboxv1.OutboxMessage{Shard: m.Shard, Id: m.ID, EventId: m.EventID, EventType: m.EventType, OrderNo: m.OrderNo,
		OrderVersion: m.OrderVersion, OccurredAt: timestamppb.New(m.OccurredAt), Traceparent: m.Traceparent,
		Status: toProtoStatus(m.Status), Attempts: m.Attempts, LastError: m.LastError}
	if m.NextAttemptAt != nil {
		out.NextAttemptAt = timestamppb.New(*m.NextAttemptAt)
	}
	if m.PublishedAt != nil {
		out.PublishedAt = timestamppb.New(*m.PublishedAt)
	}
	return out
}

var statuses = map[outboxv1.MessageStatus]outbox.Status{
	outboxv1.MessageStatus_MESSAGE_STATUS_PENDING:   outbox.StatusPending,
	outboxv1.MessageStatus_MESSAGE_STATUS_PUBLISHED: outbox.StatusPublished,
	outboxv1.MessageStatus_MESSAGE_STATUS_FAILED:    outbox.StatusFailed,
}

// toFilter converts a filter's fields, adding a violation (prefixed with
// prefix) for a status number the enum does not have and for a timestamp
// that is not one (seconds outside years 1 to 9999, nanos outside
// 0..999,999,999). MESSAGE_STATUS_UNSPECIFIED is "no status given".
func toFilter(v *validation.Violations, prefix, shardName string, st outboxv1.MessageStatus, eventType string, since, until *timestamppb.Timestamp) outbox.Filter {
	f := outbox.Filter{Shard: shardName, EventType: eventType}
	if st != outboxv1.MessageStatus_MESSAGE_STATUS_UNSPECIFIED {
		s, ok := statuses[st]
		if !ok {
			v.Add(prefix+"status", fmt.Sprintf("unknown status number %d (known: %s)", int32(st), strings.Join(statusNames(), ", ")))
		}
		f.Status = s
	}
	f.Since = toTime(v, prefix+"since", since)
	f.Until = toTime(v, prefix+"until", until)
	return f
}

// statusNames are the names of the statuses a filter can ask for.
func statusNames() []string {
	names := make([]string, 0, len(statuses))
	for st := range statuses {
		names = append(names, st.String())
	}
	slices.Sort(names)
	return names
}

func toProtoStatus(s outbox.Status) outboxv1.MessageStatus {
	for k, v := range statuses {
		if v == s {
			return k
		}
	}
	return outboxv1.MessageStatus_MESSAGE_STATUS_UNSPECIFIED
}

// toTime converts an optional timestamp; nil is the zero time (no bound).
func toTime(v *validation.Violations, field string, ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	if err := ts.CheckValid(); err != nil {
		v.Add(field, fmt.Sprintf("invalid timestamp (seconds %d, nanos %d): must be within years 1 to 9999 with nanos 0 to 999999999", ts.GetSeconds(), ts.GetNanos()))
		return time.Time{}
	}
	return ts.AsTime()
}

// Auth checks the bearer token of every call, unary and streaming, gRPC and
// REST alike (the gateway calls the gRPC server in-process and forwards the
// Authorization header as "authorization" metadata). A call passes with the
// shared admin token, or, when the relay verifies JWTs, with an operator's
// token: a user's or a shop's is PERMISSION_DENIED (403), no token or a bad
// one UNAUTHENTICATED (401).
type Auth struct {
	token []byte
	// jwt checks the tokens that are not the admin token; nil with
	// authentication off, when only the admin token passes.
	jwt *authgrpc.Interceptor
}

// MinTokenLength is the shortest admin token NewAuth accepts: 32 characters
// (`head -c 24 /dev/urandom | base64` or `openssl rand -hex 16` make one),
// too many to guess.
const MinTokenLength = 32

// NewAuth returns the check for token, which must be at least
// MinTokenLength characters long, and for the JWTs jwt verifies (nil: the
// admin token only). jwt's policy leaves the admin API to operators
// (auth.DefaultRules has no rule for it), and its public methods must not
// include reflection, which describes the whole admin API
// (AdminPublic).
func NewAuth(token string, jwt *authgrpc.Interceptor) (*Auth, error) {
	if n := utf8.RuneCountInString(token); n < MinTokenLength {
		return nil, fmt.Errorf("the admin token must be at least %d characters long, it has %d", MinTokenLength, n)
	}
	return &Auth{token: []byte(token), jwt: jwt}, nil
}

// AdminPublic are the admin API's methods called without a token: health
// checks only, which probes make.
func AdminPublic() []string { return []string{"/grpc.health.v1.Health/"} }

// AdminRealm names the admin API in its WWW-Authenticate challenges.
const AdminRealm = "orderflow-admin"

func (a *Auth) valid(header string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), a.token) == 1
}

// adminChallenge is the RFC 6750 challenge of a refused call. It is the
// UNAUTHENTICATED status's message, which the REST gateway makes the
// WWW-Authenticate header of its 401, and the www-authenticate response
// metadata of gRPC calls.
const adminChallenge = `Bearer realm="` + AdminRealm + `", error="invalid_token", error_description="missing or wrong bearer token"`

// challenge is a refused call's response metadata, new for every call: a
// metadata.MD is a map that gRPC may change.
func challenge() metadata.MD { return metadata.Pairs("www-authenticate", adminChallenge) }

// Unary refuses calls without the admin token or an operator's JWT
// (health checks excepted): UNAUTHENTICATED, HTTP 401 over REST, or
// PERMISSION_DENIED (403) for another role's JWT.
func (a *Auth) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if a.pass(ctx, info.FullMethod) {
		return handler(ctx, req)
	}
	if a.jwt != nil {
		return a.jwt.Unary(ctx, req, info, handler)
	}
	_ = grpc.SetHeader(ctx, challenge())
	return nil, status.Error(codes.Unauthenticated, adminChallenge)
}

// Stream refuses streaming calls as Unary does (health's Watch excepted):
// reflection is one, and would otherwise describe the admin API to anyone.
func (a *Auth) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if a.pass(ss.Context(), info.FullMethod) {
		return handler(srv, ss)
	}
	if a.jwt != nil {
		return a.jwt.Stream(srv, ss, info, handler)
	}
	_ = ss.SetHeader(challenge())
	return status.Error(codes.Unauthenticated, adminChallenge)
}

// pass reports whether a call passes without a JWT: a health check (probes
// carry no token), or a call with the admin token.
func (a *Auth) pass(ctx context.Context, method string) bool {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return true
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if a.valid(v) {
			return true
		}
	}
	return false
}
