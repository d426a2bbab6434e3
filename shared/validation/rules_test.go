package validation_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/shared/validation"
)

func TestCheckID(t *testing.T) {
	t.Parallel()
	pattern := regexp.MustCompile(validation.IDPattern)
	tests := []struct {
		name     string
		id       string
		wantDesc string // "" when the id is valid
	}{
		{name: "ordinary", id: "user-42"},
		{name: "every allowed character", id: "AZaz09._@-"},
		{name: "an e-mail address", id: "kim.minji@example.com"},
		{name: "one character", id: "x"},
		{name: "64 characters", id: strings.Repeat("x", 64)},
		{name: "starts with a dot", id: ".x"},
		{name: "three dots", id: "..."},
		{name: "two dots and more", id: "..x"},
		{name: "empty", id: "", wantDesc: "must not be empty"},
		{name: "65 characters", id: strings.Repeat("x", 65), wantDesc: "at most 64 characters, got 65"},
		{name: "a single dot", id: ".", wantDesc: `must not be "."`},
		{name: "two dots", id: "..", wantDesc: `must not be ".."`},
		{name: "only spaces", id: "   ", wantDesc: "must not contain ' ' (at byte 0)"},
		{name: "a slash", id: "a/b", wantDesc: "must not contain '/' (at byte 1)"},
		{name: "NUL", id: "a\x00", wantDesc: `must not contain '\x00'`},
		{name: "newline", id: "a\n", wantDesc: `must not contain '\n'`},
		{name: "Korean", id: "사용자", wantDesc: "must not contain '사' (at byte 0)"},
		{name: "not UTF-8", id: "a\xff", wantDesc: "must not contain byte 0xFF (at byte 1)"},
		{name: "percent", id: "a%2F", wantDesc: "'%'"},
		{name: "plus", id: "a+b", wantDesc: "'+'"},
		{name: "colon", id: "a:b", wantDesc: "':'"},
		{name: "long and bad: the character is named first", id: strings.Repeat("가", 30), wantDesc: "'가'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v validation.Violations
			validation.CheckID(&v, "userId", tc.id)
			if tc.wantDesc == "" {
				if len(v) != 0 {
					t.Fatalf("CheckID(%q) = %v, want no violation", tc.id, v)
				}
			} else {
				if len(v) != 1 || v[0].Field != "userId" {
					t.Fatalf("CheckID(%q) = %v, want one violation of userId", tc.id, v)
				}
				if !strings.Contains(v[0].Description, tc.wantDesc) || !strings.Contains(v[0].Description, "A-Z a-z 0-9 . _ @ -") {
					t.Errorf("description = %q, want it to mention %q and the rule", v[0].Description, tc.wantDesc)
				}
			}
			// The published pattern says the same as the code.
			if got, want := pattern.MatchString(tc.id), tc.wantDesc == ""; got != want {
				t.Errorf("IDPattern matches %q = %v, CheckID accepts it = %v", tc.id, got, want)
			}
		})
	}
}

func TestTextCheck(t *testing.T) {
	t.Parallel()
	line := validation.Text{MaxChars: 5}
	lines := validation.Text{MaxChars: 5, Multiline: true}
	tests := []struct {
		name     string
		rule     validation.Text
		text     string
		wantDesc string // "" when the text is valid
	}{
		{name: "ordinary", rule: line, text: "Kimchi"[:5]},
		{name: "5 Korean characters", rule: line, text: "김치찌개다"},
		{name: "an emoji", rule: line, text: "🍜"},
		{name: "leading and trailing spaces are kept", rule: line, text: " a b "},
		{name: "6 characters", rule: line, text: "abcdef", wantDesc: "at most 5 characters, got 6"},
		{name: "6 Korean characters", rule: line, text: "김치찌개다요", wantDesc: "at most 5 characters, got 6"},
		{name: "empty", rule: line, text: "", wantDesc: "must not be empty"},
		{name: "only spaces", rule: line, text: "   ", wantDesc: "only white space"},
		{name: "only an ideographic space", rule: line, text: "\u3000", wantDesc: "only white space"},
		{name: "newline in one line", rule: line, text: "a\nb", wantDesc: "must not contain control characters, got U+000A at byte 1"},
		{name: "newline in lines", rule: lines, text: "a\nb"},
		{name: "CRLF in lines", rule: lines, text: "a\r\nb"},
		{name: "only line breaks", rule: lines, text: "\r\n", wantDesc: "only white space"},
		{name: "tab in lines", rule: lines, text: "a\tb", wantDesc: "other than line breaks, got U+0009"},
		{name: "NUL", rule: lines, text: "a\x00", wantDesc: "U+0000"},
		{name: "DEL", rule: line, text: "a\x7f", wantDesc: "U+007F"},
		{name: "C1 control", rule: line, text: "a\u0085", wantDesc: "U+0085"},
		{name: "escape", rule: line, text: "\x1b[0m", wantDesc: "U+001B"},
		{name: "not UTF-8", rule: line, text: "a\xc3", wantDesc: "valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v validation.Violations
			tc.rule.Check(&v, "items[2].name", tc.text)
			if tc.wantDesc == "" {
				if len(v) != 0 {
					t.Fatalf("Check(%q) = %v, want no violation", tc.text, v)
				}
				return
			}
			if len(v) != 1 || v[0].Field != "items[2].name" {
				t.Fatalf("Check(%q) = %v, want one violation of items[2].name", tc.text, v)
			}
			if !strings.Contains(v[0].Description, tc.wantDesc) {
				t.Errorf("description = %q, want it to mention %q", v[0].Description, tc.wantDesc)
			}
		})
	}
}
