package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/shared/auth"
)

func newKeysCmd(s Settings) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the local token signing keys"}
	var (
		dir  string
		keep int
	)
	generate := &cobra.Command{
		Use:   "generate",
		Short: "Write a new signing key; the public JWK Set keeps the previous keys for rotation",
		Long: `generate writes a new Ed25519 signing key with a fresh kid to DIR/` + auth.SigningKeyFile + ` (mode 0600)
and puts its public key first in DIR/` + auth.PublicKeysFile + `, the JWK Set the services verify with,
keeping up to --keep keys in all: tokens signed with a previous key verify until they expire or
their key drops out of the set. The set is written first, so services that watch it know the new
key before the first token signed with it. It prints the new kid.`,
		Example: `  orderctl keys generate
  orderctl keys generate --dir /etc/orderflow/auth --keep 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kid, err := auth.GenerateKeys(dir, keep)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signing key %s written to %s; public keys in %s\n", kid,
				filepath.Join(dir, auth.SigningKeyFile), filepath.Join(dir, auth.PublicKeysFile))
			return nil
		},
	}
	generate.Flags().StringVar(&dir, "dir", s.AuthDir, "directory of the signing key and the public JWK Set ($ORDERFLOW_AUTH_DIR)")
	generate.Flags().IntVar(&keep, "keep", 3, "public keys kept in the set, the new one included")
	cmd.AddCommand(generate)
	return cmd
}

func newTokenCmd(s Settings) *cobra.Command {
	var (
		user, shop, subject       string
		operator                  bool
		ttl                       time.Duration
		keyFile, issuer, audience string
	)
	cmd := &cobra.Command{
		Use:   "token (--user ID | --shop ID | --operator)",
		Short: "Print a signed token for a user, a shop or an operator",
		Long: `token signs a token with the local signing key (see keys generate) for one caller: a user
(--user), a shop (--shop) or an operator (--operator). It prints what the token is for on
standard error and the token alone on the last line of standard output, so scripts can take it.`,
		Example: `  curl -H "Authorization: Bearer $(orderctl token --user u-1)" localhost:8081/v1/users/u-1/orders
  orderctl token --shop s-1 --ttl 8h
  orderctl token --operator --subject alice --ttl 15m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := auth.TokenRequest{User: user, Shop: shop, Subject: subject, TTL: ttl}
			switch {
			case user != "":
				req.Role = auth.RoleUser
			case shop != "":
				req.Role = auth.RoleShop
			case operator:
				req.Role = auth.RoleOperator
			default:
				return errors.New("give one of --user, --shop, --operator")
			}
			iss, err := auth.NewIssuer(auth.IssuerConfig{KeyFile: keyFile, Issuer: issuer, Audience: audience})
			if err != nil {
				return err
			}
			token, err := iss.Issue(req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "token for %s %s, valid for %s (iss %s, aud %s, kid %s)\n",
				req.Role, orDash(user+shop), ttl, issuer, audience, iss.KeyID())
			fmt.Fprintln(cmd.OutOrStdout(), token)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&user, "user", "", "the user the token is for")
	fl.StringVar(&shop, "shop", "", "the shop the token is for")
	fl.BoolVar(&operator, "operator", false, "a token for an operator: every API, the relay's admin API included")
	fl.StringVar(&subject, "subject", "", "the token's sub (default: the user, the shop, or \"operator\")")
	fl.DurationVar(&ttl, "ttl", time.Hour, fmt.Sprintf("how long the token is valid (at most %s)", auth.MaxTTL))
	fl.StringVar(&keyFile, "key", filepath.Join(s.AuthDir, auth.SigningKeyFile), "the signing key ($ORDERFLOW_AUTH_DIR/"+auth.SigningKeyFile+")")
	fl.StringVar(&issuer, "issuer", s.AuthIssuer, "the token's iss ($ORDERFLOW_AUTH_ISSUER)")
	fl.StringVar(&audience, "audience", s.AuthAudience, "the token's aud ($ORDERFLOW_AUTH_AUDIENCE)")
	cmd.MarkFlagsMutuallyExclusive("user", "shop", "operator")
	cmd.MarkFlagsOneRequired("user", "shop", "operator")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
