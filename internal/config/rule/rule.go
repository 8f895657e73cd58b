// Package rule holds the rules a configuration value is checked against
// (required, one of, a host:port, an absolute path, ...) so that every
// section, in config or in the package of the subsystem it configures,
// words the same problem the same way. A Report collects the problems of
// one section with keys relative to it; the loader adds the full key path
// and the YAML line.
package rule

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report collects the problems of one configuration value.
type Report struct {
	prefix string
	report func(key, msg string)
}

// New returns a Report passing each problem to report with its key.
func New(report func(key, msg string)) *Report { return &Report{report: report} }

// At returns a Report for the value at key inside this one
// ("addresses[0]"), whose keys are relative to it.
func (r *Report) At(key string) *Report {
	return &Report{prefix: join(r.prefix, key), report: r.report}
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case strings.HasPrefix(b, "["):
		return a + b
	}
	return a + "." + b
}

// Errorf reports a problem with key ("" for the value itself).
func (r *Report) Errorf(key, format string, args ...any) {
	r.report(join(r.prefix, key), fmt.Sprintf(format, args...))
}

// Required reports an empty value and says whether it was present.
func (r *Report) Required(key, val string) bool {
	if strings.TrimSpace(val) == "" {
		r.Errorf(key, "required")
		return false
	}
	return true
}

// OneOf reports a value not in allowed and says whether it was.
func (r *Report) OneOf(key, val string, allowed ...string) bool {
	if slices.Contains(allowed, val) {
		return true
	}
	if val == "" {
		r.Errorf(key, "required: one of %s", strings.Join(allowed, ", "))
	} else {
		r.Errorf(key, "must be one of %s (got %q)", strings.Join(allowed, ", "), val)
	}
	return false
}

// IntRange reports a value outside lo..hi.
func (r *Report) IntRange(key string, val, lo, hi int) {
	if val < lo || val > hi {
		r.Errorf(key, "must be between %d and %d (got %d)", lo, hi, val)
	}
}

// AtLeast reports a value below lo.
func (r *Report) AtLeast(key string, val, lo int) {
	if val < lo {
		r.Errorf(key, "must be at least %d (got %d)", lo, val)
	}
}

// MinDuration reports a duration below lo.
func (r *Report) MinDuration(key string, d, lo time.Duration) {
	if d < lo {
		r.Errorf(key, "must be at least %s (got %s)", lo, d)
	}
}

// Positive reports a duration that is not above 0 and says whether it was.
func (r *Report) Positive(key string, d time.Duration) bool {
	if d <= 0 {
		r.Errorf(key, "must be greater than 0 (got %s)", d)
		return false
	}
	return true
}

// Pattern reports an empty value or one re does not match; what describes
// the allowed form.
func (r *Report) Pattern(key, val string, re *regexp.Regexp, what string) {
	if r.Required(key, val) && !re.MatchString(val) {
		r.Errorf(key, "%q is not a valid name: use %s", val, what)
	}
}

// ListenAddr checks a local host:port to listen on; port 0 picks a free
// one.
func (r *Report) ListenAddr(key, s string) {
	if r.Required(key, s) {
		if err := HostPort(s, true); err != nil {
			r.Errorf(key, "%v", err)
		}
	}
}

// DialAddr checks a remote host:port to send to.
func (r *Report) DialAddr(key, s string) {
	if r.Required(key, s) {
		if err := HostPort(s, false); err != nil {
			r.Errorf(key, "%v", err)
		}
	}
}

// AbsPath checks a required absolute file path.
func (r *Report) AbsPath(key, s string) {
	if r.Required(key, s) && !filepath.IsAbs(s) {
		r.Errorf(key, "must be an absolute path (got %q)", s)
	}
}

// InterfaceName checks a required Linux network interface name.
func (r *Report) InterfaceName(key, s string) {
	if r.Required(key, s) {
		if err := InterfaceName(s); err != nil {
			r.Errorf(key, "%v", err)
		}
	}
}

// HTTPURL checks a required http or https URL.
func (r *Report) HTTPURL(key, s string) {
	if r.Required(key, s) {
		if _, err := HTTPURL(s); err != nil {
			r.Errorf(key, "%v", err)
		}
	}
}

var hostnameRe = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

// HostPort checks "host:port". A listen address may leave the host empty
// (all addresses) and use port 0; a destination may not.
func HostPort(s string, listen bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
			return fmt.Errorf("%q is not host:port: write IPv6 addresses in brackets, as [2001:db8::1]:5405", s)
		}
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" {
		if !listen {
			return fmt.Errorf("%q has no host", s)
		}
	} else if err := Host(host); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return checkPort(s, port, listen)
}

func checkPort(s, port string, listen bool) error {
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("%q: port %q is not a number", s, port)
	}
	lo := 1
	if listen {
		lo = 0
	}
	if p < lo || p > 65535 {
		return fmt.Errorf("%q: port %d is out of range %d-65535", s, p, lo)
	}
	return nil
}

// Host checks an IP address or a host name.
func Host(host string) error {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if len(host) > 253 || !hostnameRe.MatchString(host) {
		return fmt.Errorf("host %q is neither an IP address nor a valid host name", host)
	}
	return nil
}

// HTTPURL checks an http or https URL with a host.
func HTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q must be an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	if err := Host(u.Hostname()); err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(s, p, false); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// InterfaceName checks a Linux network interface name.
func InterfaceName(s string) error {
	if len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n") {
		return fmt.Errorf("%q is not a valid interface name (at most 15 characters, no '/', ':' or spaces)", s)
	}
	return nil
}

// Errors runs check and returns each problem it reports as an error
// naming the key inside section ("vip.addresses[0].interface: required").
func Errors(section string, check func(report func(key, msg string))) []error {
	var errs []error
	check(func(key, msg string) {
		errs = append(errs, fmt.Errorf("%s: %s", join(section, key), msg))
	})
	return errs
}
