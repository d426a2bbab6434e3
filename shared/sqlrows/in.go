package sqlrows

import "strings"

// In is the one builder of SQL IN lists: the placeholders for values
// ("?,?,?", to go between the parentheses of `IN (...)`) and the values as
// statement arguments, in the same order. Callers must not pass an empty
// list: `IN ()` is a syntax error in MySQL.
func In[T any](values []T) (placeholders string, args []any) {
	args = make([]any, len(values))
	for i, v := range values {
		args[i] = v
	}
	return strings.TrimSuffix(strings.Repeat("?,", len(values)), ","), args
}
