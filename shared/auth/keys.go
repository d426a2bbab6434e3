package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// keySource is where the Verifier finds the key of a token's kid.
type keySource interface {
	keyfunc(ctx context.Context) jwt.Keyfunc
	// generation changes whenever the keys do, so that tokens verified
	// with the keys before are not taken from the Verifier's cache. A
	// source that cannot see its keys change keeps it constant.
	generation() uint64
}

// parseJWKS reads a public JWK Set. It refuses a set that is empty, holds a
// key without a kid, a symmetric key, an encryption key or private key
// material: the file is handed to every service, and a secret in it (or a
// key verifying by a shared secret) would let anyone holding the file mint
// tokens.
func parseJWKS(raw []byte) (keyfunc.Keyfunc, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("auth: decoding the JWK Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("auth: the JWK Set has no keys")
	}
	seen := make(map[string]bool, len(set.Keys))
	for i, k := range set.Keys {
		switch {
		case k.KID == "":
			return nil, fmt.Errorf("auth: key %d of the JWK Set has no kid", i)
		case seen[k.KID]:
			return nil, fmt.Errorf("auth: the JWK Set has kid %q twice", k.KID)
		case k.KTY != jwkset.KtyOKP && k.KTY != jwkset.KtyEC && k.KTY != jwkset.KtyRSA:
			return nil, fmt.Errorf("auth: key %q of the JWK Set is of type %q; only public OKP, EC and RSA keys verify tokens", k.KID, k.KTY)
		case k.D != "" || k.P != "" || k.K != "":
			return nil, fmt.Errorf("auth: key %q of the JWK Set holds private key material", k.KID)
		case k.USE != "" && k.USE != jwkset.UseSig:
			return nil, fmt.Errorf("auth: key %q of the JWK Set is for %q, not for signatures", k.KID, k.USE)
		}
		seen[k.KID] = true
	}
	storage, err := set.ToStorage()
	if err != nil {
		return nil, fmt.Errorf("auth: reading the JWK Set's keys: %w", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{Storage: storage})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return kf, nil
}

// fileKeys is a JWK Set file, read again every interval and when a token
// names a kid the keys in memory do not have and the file changed since it
// was read (a stat: unknown kids cost no read), so the new key of a
// rotation is usable as soon as the file has it. A file that does not read
// or parse keeps the keys read before and logs a warning: a bad file must
// not lock every caller out.
type fileKeys struct {
	path   string
	logger *slog.Logger

	mu      sync.Mutex // serialises reloads
	raw     []byte
	info    atomic.Pointer[os.FileInfo]
	current atomic.Pointer[keyfunc.Keyfunc]
	// gen counts the key sets read: bumped after current is swapped, so
	// a generation read before a lookup never pairs with older keys.
	gen atomic.Uint64
}

func newFileKeys(ctx context.Context, path string, interval time.Duration, logger *slog.Logger) (*fileKeys, error) {
	f := &fileKeys{path: path, logger: logger}
	if _, err := f.reload(); err != nil {
		return nil, err
	}
	go f.watch(ctx, interval)
	return f, nil
}

// reload reads the file and swaps the keys when it changed; it reports
// whether they changed.
func (f *fileKeys) reload() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, err := os.Stat(f.path)
	if err != nil {
		return false, fmt.Errorf("auth: reading the JWK Set file: %w", err)
	}
	raw, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("auth: reading the JWK Set file: %w", err)
	}
	// The file is remembered as read even when it does not parse: it is
	// not read again until it changes.
	f.info.Store(&info)
	if f.current.Load() != nil && bytes.Equal(raw, f.raw) {
		return false, nil
	}
	kf, err := parseJWKS(raw)
	if err != nil {
		return false, fmt.Errorf("%w (file %s)", err, f.path)
	}
	f.raw = raw
	f.current.Store(&kf)
	f.gen.Add(1)
	return true, nil
}

// changed reports whether the file is not the one last read.
func (f *fileKeys) changed() bool {
	now, err := os.Stat(f.path)
	if err != nil {
		return false
	}
	read := *f.info.Load()
	return !os.SameFile(read, now) || !read.ModTime().Equal(now.ModTime()) || read.Size() != now.Size()
}

func (f *fileKeys) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.reloadLogged(ctx)
		}
	}
}

func (f *fileKeys) reloadLogged(ctx context.Context) {
	changed, err := f.reload()
	switch {
	case err != nil:
		f.logger.WarnContext(ctx, "JWK Set file not reloaded; the keys read before stay in use", slog.String("file", f.path), slog.Any("error", err))
	case changed:
		f.logger.InfoContext(ctx, "JWK Set file reloaded", slog.String("file", f.path))
	}
}

func (f *fileKeys) generation() uint64 { return f.gen.Load() }

func (f *fileKeys) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(token *jwt.Token) (any, error) {
		key, err := (*f.current.Load()).KeyfuncCtx(ctx)(token)
		if err == nil || !errors.Is(err, jwkset.ErrKeyNotFound) || !f.changed() {
			return key, err
		}
		f.reloadLogged(ctx)
		return (*f.current.Load()).KeyfuncCtx(ctx)(token)
	}
}

// urlKeys is a JWK Set served over HTTP(S) by an identity provider, fetched
// at start (a URL that does not answer then fails the start), refreshed
// every interval and, rate-limited, for an unknown kid (jwkset does both).
type urlKeys struct {
	kf keyfunc.Keyfunc
}

func newURLKeys(ctx context.Context, url string, cfg VerifierConfig) (*urlKeys, error) {
	failFirst := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{url}, keyfunc.Override{
		Client:                    cfg.HTTPClient,
		HTTPTimeout:               cfg.HTTPTimeout,
		NoErrorReturnFirstHTTPReq: &failFirst,
		RefreshInterval:           cfg.RefreshInterval,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(cfg.UnknownKIDInterval), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				cfg.Logger.WarnContext(ctx, "JWK Set URL not refreshed; the keys fetched before stay in use", slog.String("url", u), slog.Any("error", err))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: fetching the JWK Set from %s: %w", url, err)
	}
	return &urlKeys{kf: kf}, nil
}

func (u *urlKeys) keyfunc(ctx context.Context) jwt.Keyfunc { return u.kf.KeyfuncCtx(ctx) }

// generation is constant: jwkset refreshes the set in the background and
// does not tell whether it changed, so VerifierConfig.CacheTTL alone bounds
// how long a removed key's tokens stay cached.
func (u *urlKeys) generation() uint64 { return 0 }

// defaultHTTPClient is used for a JWK Set URL when the configuration names
// no client.
func defaultHTTPClient(timeout time.Duration) *http.Client { return &http.Client{Timeout: timeout} }
