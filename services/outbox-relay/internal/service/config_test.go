package service_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/services/outbox-relay/internal/service"
	"github.com/orderflow/orderflow/shared/config"
)

// The relay's retention is the PUBLISHED outbox rows', under a name that
// says so; the orders' retention is the projector's.
func TestConfigOutboxRetention(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want time.Duration
	}{
		{name: "default", env: map[string]string{}, want: 168 * time.Hour},
		{name: "set", env: map[string]string{"ORDERFLOW_OUTBOX_RETENTION": "24h"}, want: 24 * time.Hour},
		{name: "the old name is not read", env: map[string]string{"ORDERFLOW_RELAY_RETENTION": "24h"}, want: 168 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.env["ORDERFLOW_ADMIN_TOKEN"] = "t"
			cfg, err := config.LoadFrom[service.Config](tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OutboxRetention != tc.want {
				t.Errorf("OutboxRetention = %s, want %s", cfg.OutboxRetention, tc.want)
			}
		})
	}
}
