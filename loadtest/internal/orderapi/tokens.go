package orderapi

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/orderflow/orderflow/shared/auth"
	"github.com/orderflow/orderflow/shared/authclient"
)

// DefaultKeyFile is the signing key `make up` generates (orderctl keys
// generate into .state/auth), relative to the repository root the tools
// run from.
var DefaultKeyFile = filepath.Join(".state", "auth", auth.SigningKeyFile)

// KeyFlagUsage is the help of the tools' -auth-key flag.
const KeyFlagUsage = "signing key the tools sign their callers' tokens with (the system's, see orderctl keys generate); empty: send no tokens, for a system with authentication off"

// tokenTTL outlasts the longest run (a day in an hour, its drain and its
// verify); the minter renews a token after half of it anyway.
const tokenTTL = 24 * time.Hour

// Tokens is the minter of a tool's -auth-key flag: nil for "", an error for
// a key that does not read.
func Tokens(keyFile string) (*authclient.Minter, error) {
	if keyFile == "" {
		return nil, nil
	}
	m, err := authclient.NewMinter(authclient.MinterConfig{KeyFile: keyFile, TTL: tokenTTL})
	if err != nil {
		return nil, fmt.Errorf("-auth-key %s: %w", keyFile, err)
	}
	return m, nil
}
