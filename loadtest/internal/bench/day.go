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

// DayResult is what a day run found; dayrun writes it as JSON and
// benchreport reads it.
type DayResult struct {
	Machine         map[string]any `json:"machine"`
	Over            string         `json:"over"`
	RateAsked       int            `json:"rateAsked"`
	Raw             Result         `json:"raw"`
	Seconds         float64        `json:"seconds"`
	Placed          int            `json:"placed"`
	Changed         int            `json:"changed"`
	Errors          int            `json:"errors"`
	Achieved        float64        `json:"achievedPerSecond"`
	Place           Result         `json:"place"`
	Freshness       Result         `json:"freshness"`
	Stale           int            `json:"stale"`
	MaxPending      float64        `json:"maxOutboxPending"`
	MaxLag          float64        `json:"maxConsumerLag"`
	DrainSeconds    float64        `json:"drainSeconds"`
	Day             int            `json:"day"`
	ProjectedDayMin float64        `json:"projectedDayMinutes"`
	VerifyOK        bool           `json:"verifyOK"`
	VerifyOutput    string         `json:"verifyOutput"`
	Profiles        []string       `json:"profiles,omitempty"`
	Timeline        []DaySample    `json:"timeline"`
}
