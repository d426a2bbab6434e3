// Package config reads a service's configuration from environment variables
// into a typed struct, once, in main. Every field carries its default in the
// struct tag; a value that does not parse stops start-up with an error that
// names the variable. Ranges and combinations are not checked here: the
// constructor that takes the configuration validates it (its Validate), so
// every value is checked once, by the code that uses it, whether it came from
// the environment or from a test.
package config

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Prefix starts the name of every orderflow environment variable.
const Prefix = "ORDERFLOW_"

// Load parses the environment into a new T. Fields are read from
// ORDERFLOW_<env tag>; nested structs add their envPrefix.
func Load[T any]() (T, error) {
	return LoadFrom[T](nil)
}

// LoadFrom is Load over the given variables instead of the process
// environment (nil means the process environment); tests use it.
func LoadFrom[T any](environ map[string]string) (T, error) {
	opts := options()
	if environ != nil {
		opts.Environment = environ
	}
	cfg, err := env.ParseAsWithOptions[T](opts)
	if err != nil {
		return cfg, fmt.Errorf("reading configuration: %w", nameVariables[T](err))
	}
	return cfg, nil
}

// options are the parsing options of every service: Load and Vars must
// agree on them, or the variables Vars lists are not the ones Load reads.
func options() env.Options {
	return env.Options{Prefix: Prefix}
}

// Var is one environment variable a configuration struct is read from.
type Var struct {
	// Name is the full variable name, prefix included.
	Name string
	// Required is set when parsing fails without the variable.
	Required bool
}

// Vars lists the variables Load[T] reads, in the struct's field order.
func Vars[T any]() ([]Var, error) {
	var cfg T
	params, err := env.GetFieldParamsWithOptions(&cfg, options())
	if err != nil {
		return nil, fmt.Errorf("listing configuration variables: %w", err)
	}
	vars := make([]Var, 0, len(params))
	for _, p := range params {
		vars = append(vars, Var{Name: p.Key, Required: p.Required})
	}
	return vars, nil
}

// WriteVars writes the variables Load[T] reads to w, one a line, a required
// one followed by " required". Deployment manifests are checked against it.
func WriteVars[T any](w io.Writer) error {
	vars, err := Vars[T]()
	if err != nil {
		return err
	}
	for _, v := range vars {
		line := v.Name
		if v.Required {
			line += " required"
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return fmt.Errorf("writing configuration variables: %w", err)
		}
	}
	return nil
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
