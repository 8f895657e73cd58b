package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// envSourcePrefix starts the Source of an error whose value came from the
// environment: "env BATON_HEARTBEAT_INTERVAL".
const envSourcePrefix = "env "

// FieldError is one problem with one configuration key.
type FieldError struct {
	// Path is the key path, such as "heartbeat.interval" or
	// "peer.paths[1].address". It is empty for problems with the document
	// as a whole (a YAML syntax error) or with an unknown variable.
	Path string
	// Line is the 1-based line in Source where the key (or, for a missing
	// key, its enclosing mapping) is; 0 when there is none.
	Line int
	// Source is the file the value came from, "env BATON_X" for an
	// environment variable, or empty for a Config built in code.
	Source string
	// Msg says what is wrong.
	Msg string
}

// Error formats the error as "source:line: path: msg", leaving out what is
// unknown.
func (e FieldError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration, sorted by where it is.
type Errors []FieldError

// Error lists the errors one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each FieldError to errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sort orders errors: those from files first by line (errors with no line
// first), then those from the environment by variable, then those with no
// source. Errors at the same place keep the order they were found in.
func (es Errors) sort() {
	rank := func(e FieldError) int {
		switch {
		case e.Source == "":
			return 2
		case strings.HasPrefix(e.Source, envSourcePrefix):
			return 1
		}
		return 0
	}
	slices.SortStableFunc(es, func(a, b FieldError) int {
		return cmp.Or(
			cmp.Compare(rank(a), rank(b)),
			cmp.Compare(a.Source, b.Source),
			cmp.Compare(a.Line, b.Line),
		)
	})
}
