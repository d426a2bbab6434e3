package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/services/order-command/internal/domain"
)

// placedAt is when the orders of these tests were placed. All times are fixed
// so that the window checks do not depend on when the tests run.
var placedAt = time.Date(2025, time.March, 14, 9, 30, 15, 123456000, time.UTC)

// changeWindow is how long an order can be advanced or cancelled.
const changeWindow = 30 * 24 * time.Hour

// kst is a zone east of UTC, to show that times are stored in UTC.
var kst = time.FixedZone("KST", 9*60*60)

var allStatuses = []domain.Status{
	domain.StatusUnspecified,
	domain.StatusPlaced,
	domain.StatusAccepted,
	domain.StatusDelivering,
	domain.StatusDelivered,
	domain.StatusCancelled,
}

// validRequest is a request that passes validation; its total is 2*12000+1*3500.
func validRequest() domain.PlaceRequest {
	return domain.PlaceRequest{
		RequestID: "req-0001",
		UserID:    "user-42",
		ShopID:    "shop-7",
		Items: []domain.Item{
			{MenuID: "m-1", Name: "Bibimbap", Quantity: 2, UnitPrice: 12000},
			{MenuID: "m-2", Name: "Kimchi", Quantity: 1, UnitPrice: 3500},
		},
		DeliveryAddress: "1 Main Street, Seoul",
	}
}

// orderIn returns an order placed at placedAt that has reached status the way
// a real one would: one step at a time, one history entry per step.
func orderIn(t *testing.T, status domain.Status) *domain.Order {
	t.Helper()
	r := validRequest()
	total, err := r.Validate()
	if err != nil {
		t.Fatalf("Validate() of the sample request: %v", err)
	}
	o := domain.NewOrder(1001, r, total, placedAt)
	at := placedAt
	step := func(to domain.Status) {
		at = at.Add(10 * time.Minute)
		if _, err := o.Advance(to, at, changeWindow); err != nil {
			t.Fatalf("Advance(%v) while setting up: %v", to, err)
		}
	}
	switch status {
	case domain.StatusUnspecified:
		// Not reachable through the domain; only a corrupt row would look like this.
		o.Status = domain.StatusUnspecified
	case domain.StatusPlaced:
	case domain.StatusAccepted:
		step(domain.StatusAccepted)
	case domain.StatusDelivering:
		step(domain.StatusAccepted)
		step(domain.StatusDelivering)
	case domain.StatusDelivered:
		step(domain.StatusAccepted)
		step(domain.StatusDelivering)
		step(domain.StatusDelivered)
	case domain.StatusCancelled:
		if _, err := o.Cancel("changed my mind", placedAt.Add(time.Minute), 30*24*time.Hour); err != nil {
			t.Fatalf("Cancel() while setting up: %v", err)
		}
	default:
		t.Fatalf("orderIn: unknown status %v", status)
	}
	return o
}

// clone deep-copies an order, so that a refused change can be shown to have
// left every field, including the slices, as it was.
func clone(o *domain.Order) *domain.Order {
	c := *o
	if o.Items != nil {
		c.Items = append([]domain.Item(nil), o.Items...)
	}
	if o.History != nil {
		c.History = append([]domain.StatusChange(nil), o.History...)
	}
	return &c
}

func wantRuleError(t *testing.T, err error, rule string) *domain.RuleError {
	t.Helper()
	var re *domain.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v (%T), want a *domain.RuleError", err, err)
	}
	if re.Rule != rule {
		t.Errorf("Rule = %q, want %q (message %q)", re.Rule, rule, re.Message)
	}
	return re
}

func TestAdvance(t *testing.T) {
	t.Parallel()
	allowed := map[[2]domain.Status]domain.EventType{
		{domain.StatusPlaced, domain.StatusAccepted}:      domain.EventOrderAccepted,
		{domain.StatusAccepted, domain.StatusDelivering}:  domain.EventOrderDelivering,
		{domain.StatusDelivering, domain.StatusDelivered}: domain.EventOrderDelivered,
	}
	type testCase struct {
		name      string
		from, to  domain.Status
		wantEvent domain.EventType // EventUnspecified when the move must be refused
	}
	// 99 stands for a number outside the enum, as a client could send.
	targets := append(append([]domain.Status(nil), allStatuses...), domain.Status(99))
	var tests []testCase
	for _, from := range allStatuses {
		for _, to := range targets {
			tests = append(tests, testCase{
				name:      fmt.Sprintf("%v to %v (%d to %d)", from, to, from, to),
				from:      from,
				to:        to,
				wantEvent: allowed[[2]domain.Status{from, to}],
			})
		}
	}
	// A time with nanoseconds in another zone: the change is stored in UTC,
	// truncated to what the database keeps.
	now := time.Date(2025, time.March, 14, 20, 0, 0, 987654321, kst)
	wantNow := time.Date(2025, time.March, 14, 11, 0, 0, 987654000, time.UTC)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := orderIn(t, tc.from)
			before := clone(o)

			ev, err := o.Advance(tc.to, now, changeWindow)

			if tc.wantEvent == domain.EventUnspecified {
				if err == nil {
					t.Fatalf("Advance() = %+v, nil; want a rule error", ev)
				}
				wantRuleError(t, err, domain.RuleStatusTransition)
				if ev != (domain.Event{}) {
					t.Errorf("event = %+v, want the zero event", ev)
				}
				if !reflect.DeepEqual(o, before) {
					t.Errorf("refused Advance changed the order:\n got %+v\nwant %+v", o, before)
				}
				return
			}

			if err != nil {
				t.Fatalf("Advance(): %v", err)
			}
			if o.Status != tc.to {
				t.Errorf("Status = %v, want %v", o.Status, tc.to)
			}
			if o.Version != before.Version+1 {
				t.Errorf("Version = %d, want %d", o.Version, before.Version+1)
			}
			if !o.UpdatedAt.Equal(wantNow) || o.UpdatedAt.Location() != time.UTC {
				t.Errorf("UpdatedAt = %v, want %v", o.UpdatedAt, wantNow)
			}
			if len(o.History) != len(before.History)+1 {
				t.Fatalf("History has %d entries, want %d", len(o.History), len(before.History)+1)
			}
			if !reflect.DeepEqual(o.History[:len(before.History)], before.History) {
				t.Errorf("earlier history changed: got %+v, want %+v", o.History[:len(before.History)], before.History)
			}
			last := o.History[len(o.History)-1]
			if last.Status != tc.to || last.Version != o.Version || !last.ChangedAt.Equal(wantNow) {
				t.Errorf("new history entry = %+v, want {%v %d %v}", last, tc.to, o.Version, wantNow)
			}
			want := domain.Event{Type: tc.wantEvent, OrderNo: o.No, Version: o.Version, OccurredAt: wantNow}
			if ev.Type != want.Type || ev.OrderNo != want.OrderNo || ev.Version != want.Version ||
				!ev.OccurredAt.Equal(want.OccurredAt) {
				t.Errorf("event = %+v, want %+v", ev, want)
			}
			// Nothing but the status, version, time and history may change.
			rest := clone(o)
			rest.Status, rest.Version, rest.UpdatedAt, rest.History =
				before.Status, before.Version, before.UpdatedAt, before.History
			if !reflect.DeepEqual(rest, before) {
				t.Errorf("Advance changed other fields:\n got %+v\nwant %+v", rest, before)
			}
		})
	}
}

// An order placed longer ago than the change window cannot be advanced: it
// is past the retention and may be purged; cancelling is refused the same
// way (TestCancel). Before the window ends every step works.
func TestAdvanceWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		from, to domain.Status
		now      time.Time
		wantRule string // empty when the advance must succeed
	}{
		{name: "placed, one microsecond before the boundary", from: domain.StatusPlaced, to: domain.StatusAccepted,
			now: placedAt.Add(changeWindow - time.Microsecond)},
		{name: "delivering, one microsecond before the boundary", from: domain.StatusDelivering, to: domain.StatusDelivered,
			now: placedAt.Add(changeWindow - time.Microsecond)},
		{name: "placed, exactly at the boundary", from: domain.StatusPlaced, to: domain.StatusAccepted,
			now: placedAt.Add(changeWindow), wantRule: domain.RuleChangeWindow},
		{name: "accepted, past the retention", from: domain.StatusAccepted, to: domain.StatusDelivering,
			now: placedAt.Add(changeWindow + time.Hour), wantRule: domain.RuleChangeWindow},
		{name: "delivering, a year later", from: domain.StatusDelivering, to: domain.StatusDelivered,
			now: placedAt.AddDate(1, 0, 0), wantRule: domain.RuleChangeWindow},
		{name: "wrong step past the window is still a transition error", from: domain.StatusPlaced, to: domain.StatusDelivered,
			now: placedAt.AddDate(1, 0, 0), wantRule: domain.RuleStatusTransition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := orderIn(t, tc.from)
			before := clone(o)

			ev, err := o.Advance(tc.to, tc.now, changeWindow)

			if tc.wantRule == "" {
				if err != nil || o.Status != tc.to {
					t.Fatalf("Advance() = %v, status %v; want %v", err, o.Status, tc.to)
				}
				return
			}
			if err == nil {
				t.Fatalf("Advance() = %+v, nil; want a %s error", ev, tc.wantRule)
			}
			re := wantRuleError(t, err, tc.wantRule)
			if tc.wantRule == domain.RuleChangeWindow && (!strings.Contains(re.Message, "30 days") ||
				!strings.Contains(re.Message, placedAt.Format(time.RFC3339))) {
				t.Errorf("message %q does not name the window and when the order was placed", re.Message)
			}
			if !reflect.DeepEqual(o, before) {
				t.Errorf("refused Advance changed the order:\n got %+v\nwant %+v", o, before)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	const window = 30 * 24 * time.Hour
	tests := []struct {
		name        string
		from        domain.Status
		now         time.Time
		wantRule    string   // empty when the cancel must succeed
		wantMessage []string // parts of the refusal message
	}{
		{name: "placed, just after placing", from: domain.StatusPlaced, now: placedAt.Add(time.Second)},
		{name: "placed, 29 days 23 hours later", from: domain.StatusPlaced, now: placedAt.Add(29*24*time.Hour + 23*time.Hour)},
		{name: "accepted, within the window", from: domain.StatusAccepted, now: placedAt.Add(29*24*time.Hour + 23*time.Hour)},
		{name: "delivering, within the window", from: domain.StatusDelivering, now: placedAt.Add(29*24*time.Hour + 23*time.Hour)},
		{name: "delivered, within the window", from: domain.StatusDelivered, now: placedAt.Add(29*24*time.Hour + 23*time.Hour)},
		{name: "delivered, one microsecond before the boundary", from: domain.StatusDelivered, now: placedAt.Add(window - time.Microsecond)},
		{name: "placed, exactly at the boundary", from: domain.StatusPlaced, now: placedAt.Add(window),
			wantRule: domain.RuleCancelWindow, wantMessage: []string{"30 days", placedAt.Format(time.RFC3339)}},
		{name: "delivered, exactly at the boundary", from: domain.StatusDelivered, now: placedAt.Add(window),
			wantRule: domain.RuleCancelWindow, wantMessage: []string{"30 days"}},
		{name: "placed, one nanosecond after the boundary", from: domain.StatusPlaced, now: placedAt.Add(window + time.Nanosecond),
			wantRule: domain.RuleCancelWindow, wantMessage: []string{"30 days"}},
		{name: "accepted, a year later", from: domain.StatusAccepted, now: placedAt.AddDate(1, 0, 0),
			wantRule: domain.RuleCancelWindow, wantMessage: []string{"30 days"}},
		{name: "already cancelled, within the window", from: domain.StatusCancelled, now: placedAt.Add(time.Hour),
			wantRule: domain.RuleAlreadyCancelled},
		{name: "already cancelled, after the window", from: domain.StatusCancelled, now: placedAt.Add(2 * window),
			wantRule: domain.RuleAlreadyCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := orderIn(t, tc.from)
			before := clone(o)
			const reason = "ordered the wrong shop"

			ev, err := o.Cancel(reason, tc.now, window)

			if tc.wantRule != "" {
				if err == nil {
					t.Fatalf("Cancel() = %+v, nil; want a %s error", ev, tc.wantRule)
				}
				re := wantRuleError(t, err, tc.wantRule)
				for _, w := range tc.wantMessage {
					if !strings.Contains(re.Message, w) {
						t.Errorf("message %q does not mention %q", re.Message, w)
					}
				}
				if ev != (domain.Event{}) {
					t.Errorf("event = %+v, want the zero event", ev)
				}
				if !reflect.DeepEqual(o, before) {
					t.Errorf("refused Cancel changed the order:\n got %+v\nwant %+v", o, before)
				}
				return
			}

			if err != nil {
				t.Fatalf("Cancel(): %v", err)
			}
			wantNow := tc.now.UTC().Truncate(time.Microsecond)
			if o.Status != domain.StatusCancelled {
				t.Errorf("Status = %v, want CANCELLED", o.Status)
			}
			if o.CancelReason != reason {
				t.Errorf("CancelReason = %q, want %q", o.CancelReason, reason)
			}
			if o.Version != before.Version+1 {
				t.Errorf("Version = %d, want %d", o.Version, before.Version+1)
			}
			if !o.UpdatedAt.Equal(wantNow) {
				t.Errorf("UpdatedAt = %v, want %v", o.UpdatedAt, wantNow)
			}
			if len(o.History) != len(before.History)+1 {
				t.Fatalf("History has %d entries, want %d", len(o.History), len(before.History)+1)
			}
			last := o.History[len(o.History)-1]
			if last.Status != domain.StatusCancelled || last.Version != o.Version || !last.ChangedAt.Equal(wantNow) {
				t.Errorf("new history entry = %+v, want {CANCELLED %d %v}", last, o.Version, wantNow)
			}
			if ev.Type != domain.EventOrderCancelled || ev.OrderNo != o.No || ev.Version != o.Version ||
				!ev.OccurredAt.Equal(wantNow) {
				t.Errorf("event = %+v, want {Type:%s OrderNo:%d Version:%d OccurredAt:%v}",
					ev, domain.EventOrderCancelled, o.No, o.Version, wantNow)
			}
		})
	}
}

func TestNewOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{name: "UTC, whole microseconds", now: placedAt, want: placedAt},
		{name: "nanoseconds are truncated", now: time.Date(2025, time.March, 14, 9, 30, 15, 123456789, time.UTC),
			want: time.Date(2025, time.March, 14, 9, 30, 15, 123456000, time.UTC)},
		{name: "other zone is converted to UTC", now: time.Date(2025, time.March, 15, 1, 2, 3, 999999999, kst),
			want: time.Date(2025, time.March, 14, 16, 2, 3, 999999000, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := validRequest()
			total, err := r.Validate()
			if err != nil {
				t.Fatalf("Validate(): %v", err)
			}

			o := domain.NewOrder(77, r, total, tc.now)

			if o.No != 77 || o.RequestID != r.RequestID || o.UserID != r.UserID || o.ShopID != r.ShopID ||
				o.DeliveryAddress != r.DeliveryAddress || o.TotalAmount != total {
				t.Errorf("NewOrder() = %+v, does not carry the request", o)
			}
			if !reflect.DeepEqual(o.Items, r.Items) {
				t.Errorf("Items = %+v, want %+v", o.Items, r.Items)
			}
			if o.RequestHash != r.Hash() {
				t.Errorf("RequestHash = %x, want %x", o.RequestHash, r.Hash())
			}
			if o.Status != domain.StatusPlaced {
				t.Errorf("Status = %v, want PLACED", o.Status)
			}
			if o.Version != 1 {
				t.Errorf("Version = %d, want 1", o.Version)
			}
			if o.CancelReason != "" {
				t.Errorf("CancelReason = %q, want empty", o.CancelReason)
			}
			for name, got := range map[string]time.Time{"PlacedAt": o.PlacedAt, "UpdatedAt": o.UpdatedAt} {
				if !got.Equal(tc.want) || got.Location() != time.UTC || got.Nanosecond()%1000 != 0 {
					t.Errorf("%s = %v, want %v in UTC", name, got, tc.want)
				}
			}
			wantHistory := []domain.StatusChange{{Status: domain.StatusPlaced, Version: 1, ChangedAt: o.PlacedAt}}
			if !reflect.DeepEqual(o.History, wantHistory) {
				t.Errorf("History = %+v, want %+v", o.History, wantHistory)
			}
			ev := o.PlacedEvent()
			if ev.Type != domain.EventOrderPlaced || ev.OrderNo != 77 || ev.Version != 1 || !ev.OccurredAt.Equal(tc.want) {
				t.Errorf("PlacedEvent() = %+v, want {Type:%s OrderNo:77 Version:1 OccurredAt:%v}",
					ev, domain.EventOrderPlaced, tc.want)
			}
		})
	}
}

func TestPlaceRequestHash(t *testing.T) {
	t.Parallel()
	base := validRequest()
	baseHash := base.Hash()
	if again := validRequest().Hash(); again != baseHash {
		t.Fatalf("equal requests hash differently: %x and %x", baseHash, again)
	}

	tests := []struct {
		name   string
		a, b   func(*domain.PlaceRequest) // b nil: compare a against the base request
		differ bool
	}{
		{name: "equal requests", a: func(*domain.PlaceRequest) {}, differ: false},
		{name: "equal requests with their own item slices", a: func(r *domain.PlaceRequest) {
			r.Items = append([]domain.Item(nil), r.Items...)
		}, differ: false},
		{name: "requestId", a: func(r *domain.PlaceRequest) { r.RequestID = "req-0002" }, differ: true},
		{name: "userId", a: func(r *domain.PlaceRequest) { r.UserID = "user-43" }, differ: true},
		{name: "shopId", a: func(r *domain.PlaceRequest) { r.ShopID = "shop-8" }, differ: true},
		{name: "deliveryAddress", a: func(r *domain.PlaceRequest) { r.DeliveryAddress = "2 Main Street, Seoul" }, differ: true},
		{name: "item menuId", a: func(r *domain.PlaceRequest) { r.Items[1].MenuID = "m-3" }, differ: true},
		{name: "item name", a: func(r *domain.PlaceRequest) { r.Items[0].Name = "Bulgogi" }, differ: true},
		{name: "item quantity", a: func(r *domain.PlaceRequest) { r.Items[0].Quantity = 3 }, differ: true},
		{name: "item unitPrice", a: func(r *domain.PlaceRequest) { r.Items[1].UnitPrice = 3501 }, differ: true},
		{name: "item order", a: func(r *domain.PlaceRequest) {
			r.Items[0], r.Items[1] = r.Items[1], r.Items[0]
		}, differ: true},
		{name: "one item fewer", a: func(r *domain.PlaceRequest) { r.Items = r.Items[:1] }, differ: true},
		{name: "one item more", a: func(r *domain.PlaceRequest) {
			r.Items = append(r.Items, domain.Item{MenuID: "m-9", Name: "Water", Quantity: 1, UnitPrice: 500})
		}, differ: true},
		{name: "characters moved from userId to shopId",
			a:      func(r *domain.PlaceRequest) { r.UserID, r.ShopID = "ab", "c" },
			b:      func(r *domain.PlaceRequest) { r.UserID, r.ShopID = "a", "bc" },
			differ: true},
		{name: "characters moved from requestId to userId",
			a:      func(r *domain.PlaceRequest) { r.RequestID, r.UserID = "req-1u", "ser" },
			b:      func(r *domain.PlaceRequest) { r.RequestID, r.UserID = "req-1", "user" },
			differ: true},
		{name: "characters moved from shopId to deliveryAddress",
			a:      func(r *domain.PlaceRequest) { r.ShopID, r.DeliveryAddress = "shop-71", "Main" },
			b:      func(r *domain.PlaceRequest) { r.ShopID, r.DeliveryAddress = "shop-7", "1Main" },
			differ: true},
		{name: "characters moved from deliveryAddress to an item's menuId",
			a:      func(r *domain.PlaceRequest) { r.DeliveryAddress, r.Items[0].MenuID = "Seoulm", "-1" },
			b:      func(r *domain.PlaceRequest) { r.DeliveryAddress, r.Items[0].MenuID = "Seoul", "m-1" },
			differ: true},
		{name: "characters moved from an item's menuId to its name",
			a:      func(r *domain.PlaceRequest) { r.Items[0].MenuID, r.Items[0].Name = "m-1B", "ibimbap" },
			b:      func(r *domain.PlaceRequest) { r.Items[0].MenuID, r.Items[0].Name = "m-1", "Bibimbap" },
			differ: true},
		{name: "characters moved from one item's name to the next item's menuId",
			a:      func(r *domain.PlaceRequest) { r.Items[0].Name, r.Items[1].MenuID = "Bibimbapm", "-2" },
			b:      func(r *domain.PlaceRequest) { r.Items[0].Name, r.Items[1].MenuID = "Bibimbap", "m-2" },
			differ: true},
		{name: "empty field next to a filled one",
			a:      func(r *domain.PlaceRequest) { r.UserID, r.ShopID = "", "xy" },
			b:      func(r *domain.PlaceRequest) { r.UserID, r.ShopID = "xy", "" },
			differ: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := validRequest(), validRequest()
			tc.a(&a)
			if tc.b != nil {
				tc.b(&b)
			}
			ha, hb := a.Hash(), b.Hash()
			if got := ha != hb; got != tc.differ {
				t.Errorf("hashes differ = %v, want %v\n a %+v: %x\n b %+v: %x", got, tc.differ, a, ha, b, hb)
			}
			if again := a.Hash(); again != ha {
				t.Errorf("Hash() is not stable: %x then %x", ha, again)
			}
		})
	}
}
