// Command tokens writes the bearer tokens of a load run to a JSON file:
// one per user (user-0 ... user-N-1) and per shop (shop-0 ...), and an
// operator's, signed with the system's signing key. The k6 scripts read it
// (-e TOKENS=file), so that each simulated user calls with its own token
// and has its own PlaceOrder limit, as in production.
//
//	go run ./loadtest/cmd/tokens -out .state/k6-tokens.json
//
// The file is {"users": [...], "shops": [...], "operator": "..."}, the
// token of user-i at users[i].
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/orderflow/orderflow/loadtest/internal/orderapi"
	"github.com/orderflow/orderflow/shared/authclient"
)

// tokenFile is the file's layout.
type tokenFile struct {
	Users    []string `json:"users"`
	Shops    []string `json:"shops"`
	Operator string   `json:"operator"`
}

func main() {
	key := flag.String("auth-key", orderapi.DefaultKeyFile, "signing key (orderctl keys generate)")
	users := flag.Int("users", 5000, "users user-0 ... user-N-1, as the k6 scripts pick them")
	shops := flag.Int("shops", 300, "shops shop-0 ... shop-N-1")
	ttl := flag.Duration("ttl", 12*time.Hour, "how long the tokens are valid")
	out := flag.String("out", "", "the file to write (required; mode 0600: the tokens are credentials)")
	flag.Parse()
	if err := run(*key, *users, *shops, *ttl, *out); err != nil {
		fmt.Fprintln(os.Stderr, "tokens:", err)
		os.Exit(1)
	}
}

func run(key string, users, shops int, ttl time.Duration, out string) error {
	if out == "" || users < 1 || shops < 1 {
		return fmt.Errorf("need -out and at least one user and one shop")
	}
	m, err := authclient.NewMinter(authclient.MinterConfig{KeyFile: key, TTL: ttl})
	if err != nil {
		return err
	}
	f := tokenFile{Users: make([]string, users), Shops: make([]string, shops)}
	for i := range f.Users {
		if f.Users[i], err = m.User(fmt.Sprintf("user-%d", i)); err != nil {
			return err
		}
	}
	for i := range f.Shops {
		if f.Shops[i], err = m.Shop(fmt.Sprintf("shop-%d", i)); err != nil {
			return err
		}
	}
	if f.Operator, err = m.Operator(); err != nil {
		return err
	}
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "tokens: %d users, %d shops and an operator, valid for %s, in %s\n", users, shops, ttl, out)
	return nil
}
