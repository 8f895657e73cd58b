// Package redact keeps credentials out of what baton logs and shows.
package redact

import (
	"errors"
	"net/url"
	"strings"
)

// URL returns raw with any user:password@ replaced by "REDACTED@". A
// string that does not parse as a URL with a host (a malformed one, or
// "user:pass@host:port") is cut at its last '@' before the path, so that
// its credentials do not leak either.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		scheme, rest = "", raw
	}
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	at := strings.LastIndex(host, "@")
	if at < 0 {
		return raw
	}
	out := "REDACTED@" + rest[at+1:]
	if ok {
		out = scheme + "://" + out
	}
	return out
}

// Err redacts the URL a *url.Error carries (net/http's errors do), in
// place, and returns err.
func Err(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = URL(ue.URL)
	}
	return err
}
