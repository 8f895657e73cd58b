package aws

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// throttleCodes are the EC2 error codes that mean "slow down".
var throttleCodes = map[string]bool{
	"RequestLimitExceeded":      true,
	"Throttling":                true,
	"ThrottlingException":       true,
	"RequestThrottled":          true,
	"RequestThrottledException": true,
	"TooManyRequestsException":  true,
	"EC2ThrottledException":     true,
}

// transientCodes are server-side failures worth another try.
var transientCodes = map[string]bool{
	"InternalError":      true,
	"InternalFailure":    true,
	"ServiceUnavailable": true,
	"Unavailable":        true,
	"RequestTimeout":     true,
}

// Code returns the EC2 error code of err, or "".
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// IsThrottled reports whether EC2 refused the call for its request rate.
func IsThrottled(err error) bool {
	if throttleCodes[Code(err)] {
		return true
	}
	return status(err) == http.StatusTooManyRequests
}

// IsNotFound reports whether err names a resource that does not exist
// (codes like InvalidRouteTableID.NotFound, InvalidNetworkInterfaceID.NotFound,
// InvalidAllocationID.NotFound).
func IsNotFound(err error) bool {
	c := Code(err)
	return strings.HasSuffix(c, ".NotFound") || strings.HasSuffix(c, ".Malformed")
}

// IsDenied reports whether the caller lacks an IAM permission.
func IsDenied(err error) bool {
	switch Code(err) {
	case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure":
		return true
	}
	return false
}

// Classify tells a retry loop whether err is worth another attempt and how
// long the service asked to wait (0 when it did not say). Throttling, 5xx,
// 429 and timeouts are retried; everything else is final.
func Classify(err error) (retry bool, after time.Duration) {
	if err == nil {
		return false, 0
	}
	after = retryAfter(err)
	switch {
	case IsThrottled(err), transientCodes[Code(err)]:
		return true, after
	case status(err) >= 500:
		return true, after
	case errors.Is(err, context.DeadlineExceeded):
		return true, after
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, after
	}
	return false, 0
}

func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

func retryAfter(err error) time.Duration {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return 0
	}
	return ParseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
}

// maxRetryAfterSeconds bounds a Retry-After so the duration cannot overflow.
const maxRetryAfterSeconds = 24 * 60 * 60

// ParseRetryAfter reads a Retry-After header value: delay seconds or an
// HTTP date (relative to now). Unparsable or negative values give 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, maxRetryAfterSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
