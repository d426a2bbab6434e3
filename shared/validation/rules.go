package validation

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxIDLength is the longest identifier (requestId, userId, shopId, menuId):
// the VARCHAR(64) columns of the shards.
const MaxIDLength = 64

// IDPattern is the identifier rule as a regular expression, as the OpenAPI
// documents state it: 1 to 64 of A-Z a-z 0-9 . _ @ -, but not "." or "..".
// Those characters travel in a URL path segment without escaping, so an
// order placed for a user can always be listed at /v1/users/{userId}/orders;
// "." and ".." would be removed from the path by clients as dot segments.
// CheckID is the code that enforces it.
const IDPattern = `^([A-Za-z0-9_@-][A-Za-z0-9._@-]{0,63}|\.[A-Za-z0-9_@-][A-Za-z0-9._@-]{0,62}|\.\.[A-Za-z0-9._@-]{1,62})$`

// idRule is the description of every identifier violation, so a client reads
// the whole rule whichever part of it was broken.
const idRule = "1 to 64 characters of A-Z a-z 0-9 . _ @ - (not . or ..)"

// CheckID records a violation of field unless value is an identifier
// (IDPattern).
func CheckID(v *Violations, field, value string) {
	if value == "" {
		v.Add(field, "must not be empty: "+idRule)
		return
	}
	for i := 0; i < len(value); i++ {
		if idByte(value[i]) {
			continue
		}
		if r, size := utf8.DecodeRuneInString(value[i:]); r == utf8.RuneError && size == 1 {
			v.Add(field, fmt.Sprintf("must not contain byte 0x%02X (at byte %d): %s", value[i], i, idRule))
		} else {
			v.Add(field, fmt.Sprintf("must not contain %q (at byte %d): %s", r, i, idRule))
		}
		return
	}
	switch {
	case len(value) > MaxIDLength:
		v.Add(field, fmt.Sprintf("must be at most %d characters, got %d: %s", MaxIDLength, len(value), idRule))
	case value == "." || value == "..":
		v.Add(field, fmt.Sprintf("must not be %q: %s", value, idRule))
	}
}

func idByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '.' || c == '_' || c == '@' || c == '-'
}

// Text is the rule of one free-text field (a name, an address, a reason).
type Text struct {
	// MaxChars is the most characters (Unicode code points, as the shards'
	// utf8mb4 VARCHAR columns count them) the field may have.
	MaxChars int
	// Multiline allows line feeds and carriage returns (an address, a
	// reason); no other control character is ever allowed.
	Multiline bool
}

// Check records a violation of field unless value is valid UTF-8 of 1 to
// MaxChars characters, not only white space, with no control character
// (but line breaks when Multiline).
func (t Text) Check(v *Violations, field, value string) {
	if !utf8.ValidString(value) {
		v.Add(field, "must be valid UTF-8")
		return
	}
	n := utf8.RuneCountInString(value)
	switch {
	case n == 0:
		v.Add(field, "must not be empty")
		return
	case n > t.MaxChars:
		v.Add(field, fmt.Sprintf("must be at most %d characters, got %d", t.MaxChars, n))
		return
	case strings.TrimSpace(value) == "":
		v.Add(field, "must not be only white space")
		return
	}
	for i, r := range value {
		if (r == '\n' || r == '\r') && t.Multiline {
			continue
		}
		if unicode.IsControl(r) {
			rule := "must not contain control characters"
			if t.Multiline {
				rule = "must not contain control characters other than line breaks"
			}
			v.Add(field, fmt.Sprintf("%s, got %U at byte %d", rule, r, i))
			return
		}
	}
}
