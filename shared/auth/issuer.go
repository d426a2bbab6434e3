package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// The files GenerateKeys writes into its directory.
const (
	// SigningKeyFile is the private Ed25519 JWK the Issuer signs with
	// (mode 0600); it stays with whoever issues tokens.
	SigningKeyFile = "signing-key.jwk"
	// PublicKeysFile is the public JWK Set every service verifies with
	// (VerifierConfig.JWKSFile).
	PublicKeysFile = "jwks.json"
)

// The iss and aud of the local setup's tokens: orderctl issues them and
// the services verify them unless configured otherwise.
const (
	LocalIssuer     = "orderflow-local"
	DefaultAudience = "orderflow"
)

// MaxTTL bounds a token's lifetime: a token cannot be revoked, so a leaked
// one is only limited by its expiry.
const MaxTTL = 30 * 24 * time.Hour

// IssuerConfig is the signing key and what every token says about its
// origin.
type IssuerConfig struct {
	// KeyFile is the private Ed25519 JWK with its kid (SigningKeyFile).
	// Required.
	KeyFile string
	// Issuer and Audience are the iss and aud of every token. Required.
	Issuer, Audience string
	// Now is the clock iat, nbf and exp are counted from (default time.Now).
	Now func() time.Time
}

// Issuer signs tokens with a local key: the local setup's and the tests'
// stand-in for an identity provider.
type Issuer struct {
	key              ed25519.PrivateKey
	kid              string
	issuer, audience string
	now              func() time.Time
}

// NewIssuer reads the signing key.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	if cfg.KeyFile == "" || cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("auth: the issuer needs a key file, an issuer and an audience")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	raw, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("auth: reading the signing key: %w", err)
	}
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("auth: decoding the signing key %s: %w", cfg.KeyFile, err)
	}
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, fmt.Errorf("auth: reading the signing key %s: %w", cfg.KeyFile, err)
	}
	key, ok := jwk.Key().(ed25519.PrivateKey)
	if !ok || m.KID == "" {
		return nil, fmt.Errorf("auth: %s is not a private Ed25519 JWK with a kid", cfg.KeyFile)
	}
	return &Issuer{key: key, kid: m.KID, issuer: cfg.Issuer, audience: cfg.Audience, now: cfg.Now}, nil
}

// KeyID is the kid of the signing key, in every token's header.
func (i *Issuer) KeyID() string { return i.kid }

// TokenRequest says whom a token is for.
type TokenRequest struct {
	// Role is the caller's role; User is required for RoleUser, Shop for
	// RoleShop.
	Role Role
	User string
	Shop string
	// Subject is the sub (default: the user, the shop, or "operator").
	Subject string
	// TTL is how long the token is valid, at most MaxTTL. Required.
	TTL time.Duration
}

// Issue returns a signed token (compact JWT) for r.
func (i *Issuer) Issue(r TokenRequest) (string, error) {
	if r.TTL <= 0 || r.TTL > MaxTTL {
		return "", fmt.Errorf("auth: the token's lifetime must be above 0 and at most %s", MaxTTL)
	}
	if r.Subject == "" {
		switch r.Role {
		case RoleUser:
			r.Subject = r.User
		case RoleShop:
			r.Subject = r.Shop
		case RoleOperator:
			r.Subject = string(RoleOperator)
		}
	}
	now := i.now().Truncate(time.Second)
	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: i.issuer, Subject: r.Subject, Audience: jwt.ClaimStrings{i.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(r.TTL)), ID: uuid.NewString(),
		},
		Role: r.Role, User: r.User, Shop: r.Shop,
	}
	// The same rules the Verifier applies: a token it would refuse is not
	// issued.
	if err := claims.Validate(); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = i.kid
	signed, err := t.SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("auth: signing the token: %w", err)
	}
	return signed, nil
}

// GenerateKeys writes a new Ed25519 signing key with a fresh kid into dir
// (SigningKeyFile) and puts its public key first in dir's PublicKeysFile,
// keeping the public keys already there, newest first, up to keep keys in
// all (at least 1): tokens signed with the previous keys verify until they
// expire or their key drops out. It returns the new kid.
//
// The public set is written before the signing key, each by a rename, so a
// verifier watching the set knows the new key before the first token
// signed with it, and never reads half a file.
func GenerateKeys(dir string, keep int) (string, error) {
	if keep < 1 {
		return "", errors.New("auth: keep at least the new key")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("auth: creating %s: %w", dir, err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("auth: generating a key: %w", err)
	}
	// A version 7 UUID: unique, and ordered by creation time, which tells
	// the newest key in a set at a glance.
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("auth: generating a kid: %w", err)
	}
	kid := id.String()
	meta := jwkset.JWKMetadataOptions{ALG: jwkset.AlgEdDSA, KID: kid, USE: jwkset.UseSig}
	privJWK, err := jwkset.NewJWKFromKey(priv, jwkset.JWKOptions{Metadata: meta, Marshal: jwkset.JWKMarshalOptions{Private: true}})
	if err != nil {
		return "", fmt.Errorf("auth: encoding the signing key: %w", err)
	}
	pubJWK, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: meta})
	if err != nil {
		return "", fmt.Errorf("auth: encoding the public key: %w", err)
	}

	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{pubJWK.Marshal()}}
	setPath := filepath.Join(dir, PublicKeysFile)
	switch raw, err := os.ReadFile(setPath); {
	case err == nil:
		var old jwkset.JWKSMarshal
		if err := json.Unmarshal(raw, &old); err != nil {
			return "", fmt.Errorf("auth: decoding the existing %s: %w", setPath, err)
		}
		set.Keys = append(set.Keys, old.Keys...)
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("auth: reading %s: %w", setPath, err)
	}
	set.Keys = set.Keys[:min(keep, len(set.Keys))]
	if err := writeJSON(setPath, set, 0o644); err != nil {
		return "", err
	}
	if err := writeJSON(filepath.Join(dir, SigningKeyFile), privJWK.Marshal(), 0o600); err != nil {
		return "", err
	}
	return kid, nil
}

// writeJSON replaces path with v as indented JSON, through a temporary file
// in the same directory and a rename.
func writeJSON(path string, v any, mode os.FileMode) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("auth: encoding %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: writing %s: %w", path, err)
	}
	return nil
}
