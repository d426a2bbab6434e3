package domain_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/orderflow/orderflow/services/order-command/internal/domain"
	"github.com/orderflow/orderflow/shared/validation"
)

// columnRE matches a character column of a CREATE TABLE statement.
var columnRE = regexp.MustCompile(`(?m)^\s*(\w+)\s+VARCHAR\((\d+)\)`)

// storeColumns reads the character columns of the orders and order_items
// tables from the shards' migrations: "orders.user_id" -> 64. A request
// Validate accepts must fit them, so the order written is the order asked
// for (MariaDB in strict mode would refuse a longer value, a lax one would
// cut it).
func storeColumns(f *testing.F) map[string]int {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "migrations", "sql", "*.sql"))
	if err != nil || len(files) == 0 {
		f.Fatalf("finding the migrations: %v (%d files)", err, len(files))
	}
	cols := map[string]int{}
	tableRE := regexp.MustCompile(`(?s)CREATE TABLE (\w+) \((.*?)\) ENGINE`)
	alterRE := regexp.MustCompile(`ALTER TABLE (orders|order_items)\b`)
	for _, file := range files {
		sql, err := os.ReadFile(file)
		if err != nil {
			f.Fatalf("reading %s: %v", file, err)
		}
		if alterRE.Match(sql) {
			f.Fatalf("%s alters orders or order_items: teach storeColumns to read it", file)
		}
		for _, m := range tableRE.FindAllStringSubmatch(string(sql), -1) {
			for _, c := range columnRE.FindAllStringSubmatch(m[2], -1) {
				n, _ := strconv.Atoi(c[2])
				cols[m[1]+"."+c[1]] = n
			}
		}
	}
	for _, want := range []string{"orders.request_id", "orders.user_id", "orders.shop_id", "orders.delivery_address",
		"orders.cancel_reason", "order_items.menu_id", "order_items.name"} {
		if cols[want] == 0 {
			f.Fatalf("no VARCHAR column %s in the migrations (found %v)", want, cols)
		}
	}
	return cols
}

// FuzzValidatePlaceRequest checks the promises of PlaceRequest.Validate for
// any request: it never panics, it either returns a total or names at least
// one bad field, and a request it accepts follows every rule, fits the
// shards' columns and has a total that is the exact sum of its lines, within
// MaxTotalAmount. The reason goes through ValidateReason with the same
// promises.
func FuzzValidatePlaceRequest(f *testing.F) {
	cols := storeColumns(f)
	// requestID, userID, shopID, address, itemCount, quantity, altQuantity,
	// unitPrice, altUnitPrice, name, reason
	f.Add("req-1", "user-1", "shop-1", "1 Main Street", byte(2), int32(2), int32(1), int64(12000), int64(3500), "Bibimbap", "wrong shop")
	f.Add("", "", "", "", byte(0), int32(0), int32(0), int64(0), int64(0), "", "")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(100), int32(999), int32(999), int64(1), int64(1), "x", "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(101), int32(1), int32(1), int64(1), int64(1), "x", "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(10), int32(1), int32(1), int64(1_000_000), int64(1_000_000), "x", "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(11), int32(1), int32(1), int64(1_000_000), int64(1_000_000), "x", "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(2), int32(999), int32(999),
		int64(math.MaxInt64/999), int64(math.MaxInt64/999), "x", "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(2), int32(1), int32(1), int64(math.MaxInt64), int64(1), "x", "x")
	f.Add("req-1", "user-1", "shop-1", "addr", byte(3), int32(1000), int32(-1), int64(-1), int64(math.MinInt64), "x", "x")
	f.Add("주문주문", "사용자", "가게", "서울시 중구\n명동", byte(1), int32(1), int32(1), int64(9000), int64(1), "김치찌개", "취소")
	f.Add("req-\xff", "user\x00", "shop-1", "addr\xfe", byte(1), int32(1), int32(1), int64(1), int64(1), "\xc3", "\x1b[0m")
	f.Add("a/b", "   ", ".", "   ", byte(1), int32(1), int32(1), int64(1), int64(1), "a\nb", "   ")
	f.Add("..", "u@x.com", ".x", "a\r\nb", byte(1), int32(1), int32(1), int64(1), int64(1), "a\tb", "a\r\nb")
	f.Add(strings.Repeat("r", 65), strings.Repeat("u", 64), "s", strings.Repeat("가", 513), byte(1), int32(1), int32(1),
		int64(1), int64(1), strings.Repeat("가", 201), strings.Repeat("가", 512))
	f.Add("req-1", "user-1", "shop-1", "addr", byte(120), int32(math.MaxInt32), int32(math.MinInt32),
		int64(math.MaxInt64), int64(math.MinInt64), "x", "x")

	f.Fuzz(func(t *testing.T, requestID, userID, shopID, address string, itemCount byte,
		quantity, altQuantity int32, unitPrice, altUnitPrice int64, name, reason string) {
		n := int(itemCount) % 121 // 0..120, around the limit of 100
		r := domain.PlaceRequest{
			RequestID:       requestID,
			UserID:          userID,
			ShopID:          shopID,
			DeliveryAddress: address,
		}
		if n > 0 {
			r.Items = make([]domain.Item, n)
		}
		for i := range r.Items {
			// Alternate two shapes of item so that lines differ.
			it := domain.Item{MenuID: requestID, Name: name, Quantity: quantity, UnitPrice: unitPrice}
			if i%2 == 1 {
				it = domain.Item{MenuID: "m-" + shopID, Name: name + "-2", Quantity: altQuantity, UnitPrice: altUnitPrice}
			}
			r.Items[i] = it
		}

		total, err := r.Validate()
		checkReason(t, cols, reason, domain.ValidateReason(reason))

		if err != nil {
			var ve *validation.Error
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() error = %v (%T), want a *validation.Error", err, err)
			}
			if total != 0 {
				t.Errorf("Validate() = %d alongside an error, want 0", total)
			}
			if len(ve.Violations) == 0 {
				t.Fatalf("Validate() returned a validation.Error without violations")
			}
			for _, v := range ve.Violations {
				if v.Field == "" || v.Description == "" || !utf8.ValidString(v.Description) {
					t.Errorf("violation %+v has an empty field or a description that is not UTF-8", v)
				}
			}
			return
		}

		if len(r.Items) < 1 || len(r.Items) > domain.MaxItems {
			t.Fatalf("Validate() accepted %d items, want 1..%d", len(r.Items), domain.MaxItems)
		}
		var sum int64
		for i, it := range r.Items {
			if it.Quantity < domain.MinQuantity || it.Quantity > domain.MaxQuantity {
				t.Errorf("Validate() accepted items[%d].quantity %d", i, it.Quantity)
			}
			if it.UnitPrice < domain.MinUnitPrice || it.UnitPrice > domain.MaxUnitPrice {
				t.Errorf("Validate() accepted items[%d].unitPrice %d", i, it.UnitPrice)
			}
			// Bounded above, so the sum of int64 products is exact.
			sum += int64(it.Quantity) * it.UnitPrice
			checkID(t, cols["order_items.menu_id"], "menuId", it.MenuID)
			checkText(t, cols["order_items.name"], false, "name", it.Name)
		}
		checkID(t, cols["orders.request_id"], "requestId", requestID)
		checkID(t, cols["orders.user_id"], "userId", userID)
		checkID(t, cols["orders.shop_id"], "shopId", shopID)
		checkText(t, cols["orders.delivery_address"], true, "deliveryAddress", address)
		if total != sum {
			t.Errorf("Validate() = %d, want the exact sum %d", total, sum)
		}
		if total < 1 || total > domain.MaxTotalAmount {
			t.Errorf("Validate() accepted a total of %d, want 1..%d", total, domain.MaxTotalAmount)
		}
	})
}

// checkReason checks what ValidateReason said of reason.
func checkReason(t *testing.T, cols map[string]int, reason string, err error) {
	t.Helper()
	if err != nil {
		var ve *validation.Error
		if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != "reason" {
			t.Fatalf("ValidateReason() = %v, want one violation of reason", err)
		}
		return
	}
	checkText(t, cols["orders.cancel_reason"], true, "reason", reason)
}

// checkID fails t unless an accepted id follows validation.IDPattern and
// fits a VARCHAR(column).
func checkID(t *testing.T, column int, field, id string) {
	t.Helper()
	if !idRE.MatchString(id) {
		t.Errorf("Validate() accepted %s %q, which does not match %s", field, id, validation.IDPattern)
	}
	if utf8.RuneCountInString(id) > column {
		t.Errorf("Validate() accepted %s %q, longer than its VARCHAR(%d) column", field, id, column)
	}
}

// idRE is the published pattern, so the code and the OpenAPI documents
// cannot disagree about what an id is.
var idRE = regexp.MustCompile(validation.IDPattern)

// checkText fails t unless an accepted free text is valid UTF-8, has
// something other than white space, has no control character (but line
// breaks when multiline) and fits a VARCHAR(column) of utf8mb4.
func checkText(t *testing.T, column int, multiline bool, field, text string) {
	t.Helper()
	if !utf8.ValidString(text) || strings.TrimSpace(text) == "" {
		t.Errorf("Validate() accepted %s %q", field, text)
	}
	if c := utf8.RuneCountInString(text); c > column {
		t.Errorf("Validate() accepted a %s of %d characters, longer than its VARCHAR(%d) column", field, c, column)
	}
	for _, r := range text {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r')) {
			t.Errorf("Validate() accepted %s %q with control character %U", field, text, r)
		}
	}
}
