package app

import (
	"fmt"
	"strings"

	"github.com/orderflow/orderflow/shared/orderenum"
	"github.com/orderflow/orderflow/shared/validation"
)

// Limits of a valid request.
const (
	MaxIDLength     = validation.MaxIDLength
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ValidateGet checks the arguments of GetOrder.
func ValidateGet(orderNo int64, minVersion int32) error {
	var v validation.Violations
	if orderNo < 1 {
		v.Add("orderNo", fmt.Sprintf("must be at least 1, got %d", orderNo))
	}
	if minVersion < 0 {
		v.Add("minVersion", fmt.Sprintf("must not be negative, got %d", minVersion))
	}
	return v.Err()
}

// checkID applies the identifier rule of the command side
// (validation.IDPattern), so every user and shop that can place an order
// can be listed, and nothing else reaches the store.
func checkID(v *validation.Violations, field, value string) {
	validation.CheckID(v, field, value)
}

func checkStatus(v *validation.Violations, status string) {
	if status == "" {
		return
	}
	if _, ok := orderenum.ParseStatus(status); !ok {
		v.Add("status", fmt.Sprintf("unknown status %q (known: %s)", status, strings.Join(orderenum.StatusNames(), ", ")))
	}
}

// checkPage validates the paging arguments and returns the page size to use
// and where the page starts (nil: at the newest order).
func checkPage(v *validation.Violations, pageSize int32, pageToken, query string) (int, *Position) {
	size := int(pageSize)
	switch {
	case pageSize == 0:
		size = DefaultPageSize
	case pageSize < 0 || pageSize > MaxPageSize:
		v.Add("pageSize", fmt.Sprintf("must be between 1 and %d (0 means %d), got %d", MaxPageSize, DefaultPageSize, pageSize))
	}
	if pageToken == "" {
		return size, nil
	}
	pos, err := DecodePageToken(pageToken, query)
	if err != nil {
		v.Add("pageToken", err.Error())
		return size, nil
	}
	return size, &pos
}
