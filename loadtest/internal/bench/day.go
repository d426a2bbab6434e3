package bench

// DaySample is one second of a day run (loadtest/cmd/dayrun).
type DaySample struct {
	Second      int     `json:"second"`
	Placed      int     `json:"placed"`
	Changed     int     `json:"changed"`
	Errors      int     `json:"errors"`
	PlaceP99Ms  float64 `json:"placeP99Ms"`
	FreshP99Ms  float64 `json:"freshP99Ms"`
	Pending     float64 `json:"outboxPending"`
	ConsumerLag float64 `json:"consumerLag"`
}

// DayMinute is one minute of a day run: the percentiles of the orders of
// that minute, so that a bad minute shows even when the hour's p99 is good.
type DayMinute struct {
	Minute     int     `json:"minute"`
	Placed     int     `json:"placed"`
	Errors     int     `json:"errors"`
	PlaceP99Ms float64 `json:"placeP99Ms"`
	FreshP50Ms float64 `json:"freshP50Ms"`
	FreshP99Ms float64 `json:"freshP99Ms"`
	MaxPending float64 `json:"maxOutboxPending"`
	MaxLag     float64 `json:"maxConsumerLag"`
}

// DayResult is what a day run found; dayrun writes it as JSON and
// benchreport reads it.
type DayResult struct {
	Machine   map[string]any `json:"machine"`
	Over      string         `json:"over"`
	RateAsked int            `json:"rateAsked"`
	Raw       Result         `json:"raw"`
	Seconds   float64        `json:"seconds"`
	// OrdersAsked is the number of orders the run was to place (-orders), 0
	// when it ran for a duration.
	OrdersAsked int `json:"ordersAsked,omitempty"`
	// WallSeconds runs from the first order to the moment the relay and the
	// projector had caught up: the last order readable at its final version.
	WallSeconds float64 `json:"wallSeconds"`
	// CPU is what every process of the local system used over WallSeconds,
	// per order placed.
	CPU *CPUUse `json:"cpu,omitempty"`
	// CPUSpeedMicros is one Ed25519 check on one core before the run
	// (CPUSpeed): CPU figures of runs on different days compare through it.
	CPUSpeedMicros  float64     `json:"cpuSpeedMicros,omitempty"`
	Placed          int         `json:"placed"`
	Changed         int         `json:"changed"`
	Errors          int         `json:"errors"`
	Achieved        float64     `json:"achievedPerSecond"`
	Place           Result      `json:"place"`
	Freshness       Result      `json:"freshness"`
	Stale           int         `json:"stale"`
	MaxPending      float64     `json:"maxOutboxPending"`
	MaxLag          float64     `json:"maxConsumerLag"`
	DrainSeconds    float64     `json:"drainSeconds"`
	Day             int         `json:"day"`
	ProjectedDayMin float64     `json:"projectedDayMinutes"`
	VerifyOK        bool        `json:"verifyOK"`
	VerifyOutput    string      `json:"verifyOutput"`
	Profiles        []string    `json:"profiles,omitempty"`
	Timeline        []DaySample `json:"timeline"`
	Minutes         []DayMinute `json:"minutes"`
}

// SlowFreshMs is the per-minute freshness p99 from which a minute counts as
// slow: the claim is under a second in every minute.
const SlowFreshMs = 1000

// FreshnessByMinute is the minute with the highest freshness p99 and how
// many minutes had a p99 of SlowFreshMs or more.
func (r DayResult) FreshnessByMinute() (worst DayMinute, slow int) {
	for _, m := range r.Minutes {
		if m.FreshP99Ms > worst.FreshP99Ms {
			worst = m
		}
		if m.FreshP99Ms >= SlowFreshMs {
			slow++
		}
	}
	return worst, slow
}
