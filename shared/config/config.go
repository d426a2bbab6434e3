// Package config reads a service's configuration from environment variables
// into a typed struct, once, in main. Every field carries its default in the
// struct tag; a value that does not parse stops start-up with an error that
// names the variable.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Prefix starts the name of every orderflow environment variable.
const Prefix = "ORDERFLOW_"

// Validator is implemented by configuration structs that check their values
// after parsing (ranges, combinations).
type Validator interface {
	Validate() error
}

// Load parses the environment into a new T. Fields are read from
// ORDERFLOW_<env tag>; nested structs add their envPrefix.
func Load[T any]() (T, error) {
	return LoadFrom[T](nil)
}

// LoadFrom is Load over the given variables instead of the process
// environment (nil means the process environment); tests use it.
func LoadFrom[T any](environ map[string]string) (T, error) {
	opts := env.Options{Prefix: Prefix}
	if environ != nil {
		opts.Environment = environ
	}
	cfg, err := env.ParseAsWithOptions[T](opts)
	if err != nil {
		return cfg, fmt.Errorf("reading configuration: %w", nameVariables[T](err))
	}
	if v, ok := any(&cfg).(Validator); ok {
		if err := v.Validate(); err != nil {
			return cfg, fmt.Errorf("invalid configuration: %w", err)
		}
	}
	return cfg, nil
}

// nameVariables rewrites the library's "parse error on field X" into one
// error per variable, so that the operator reads which variable is wrong.
func nameVariables[T any](err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	keys := fieldKeys(reflect.TypeFor[T](), Prefix)
	var out []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if names := keys[pe.Name]; len(names) > 0 {
				out = append(out, fmt.Errorf("%s: cannot parse as %s: %w", strings.Join(names, " or "), pe.Type, pe.Err))
				continue
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// fieldKeys maps each field name to the variables it is read from.
func fieldKeys(t reflect.Type, prefix string) map[string][]string {
	keys := map[string][]string{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			if key, ok := f.Tag.Lookup("env"); ok {
				name, _, _ := strings.Cut(key, ",")
				keys[f.Name] = append(keys[f.Name], prefix+name)
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, prefix+f.Tag.Get("envPrefix"))
			}
		}
	}
	walk(t, prefix)
	return keys
}
