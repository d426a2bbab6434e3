package service_test

import (
	"testing"
	"time"

	"github.com/orderflow/orderflow/services/order-projector/internal/service"
	"github.com/orderflow/orderflow/shared/config"
)

// The projector's retention is the orders' (the purge), under a name that
// says so; the relay's outbox retention is a different setting.
func TestConfigOrderRetention(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{name: "default", env: map[string]string{}, want: 720 * time.Hour},
		{name: "set", env: map[string]string{"ORDERFLOW_ORDER_RETENTION": "1000h"}, want: 1000 * time.Hour},
		{name: "shorter than the change window is refused", env: map[string]string{"ORDERFLOW_ORDER_RETENTION": "24h"}, wantErr: true},
		{name: "the old unqualified name is not read", env: map[string]string{"ORDERFLOW_RETENTION": "1000h"}, want: 720 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.LoadFrom[service.Config](tc.env)
			if err == nil {
				err = cfg.Validate()
			}
			if tc.wantErr {
				if err == nil {
					t.Fatalf("OrderRetention %s accepted, want an error", cfg.OrderRetention)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OrderRetention != tc.want {
				t.Errorf("OrderRetention = %s, want %s", cfg.OrderRetention, tc.want)
			}
		})
	}
}
