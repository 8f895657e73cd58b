package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the YAML file at path, applies the BATON_ variables in
// environ (as from os.Environ) and the defaults, and validates the result.
// A file that cannot be read gives a wrapped error (errors.Is(err,
// fs.ErrNotExist) for a missing one); an invalid configuration gives
// Errors listing every problem.
func Load(path string, environ []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return Parse(data, path, environ)
}

// Parse is Load for a document already in memory; name is used in errors.
func Parse(data []byte, name string, environ []string) (*Config, error) {
	var errs Errors
	root, err := parseDocument(data)
	if err != nil {
		errs = append(errs, syntaxError(err, name))
		return nil, errs
	}
	c := Default()
	origins := make(map[string]origin)
	bad := make(map[string]bool)
	d := &decoder{source: name, origins: origins, bad: bad, errs: &errs}
	if root != nil {
		d.decode(root, reflect.ValueOf(&c).Elem(), "")
	}
	applyEnv(&c, environ, origins, bad, &errs)
	if c.Node.Name == "" {
		// A scale set's instances share one file: each is its host.
		if h, err := os.Hostname(); err == nil {
			c.Node.Name = h
		}
	}
	deriveDefaults(&c, origins)
	errs = append(errs, validateConfig(&c, origins, bad, name)...)
	errs.sort()
	if len(errs) > 0 {
		return nil, errs
	}
	return &c, nil
}

// Marshal writes the configuration as YAML, every key included: the
// effective configuration after defaults and environment overrides.
// Parsing the output gives the same Config back.
func (c *Config) Marshal() ([]byte, error) {
	out, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding config as YAML: %w", err)
	}
	return out, nil
}

// parseDocument parses exactly one YAML document. An empty document gives
// a nil node.
func parseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, err
	default:
		return nil, fmt.Errorf("yaml: line %d: a second document starts here; baton.yaml holds one document", extra.Line)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError turns a yaml.v3 parse error into a FieldError with its line.
func syntaxError(err error, name string) FieldError {
	msg := err.Error()
	e := FieldError{Source: name}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	e.Msg = "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")
	return e
}
