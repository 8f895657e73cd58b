package azure

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// retryable409 are the conflict codes ARM uses for "busy, try again".
var retryable409 = map[string]bool{
	"AnotherOperationInProgress":       true,
	"RetryableError":                   true,
	"ReferencedResourceNotProvisioned": true,
}

// Code returns the ARM error code of err, or "".
func Code(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// Status returns the HTTP status of an ARM error, or 0.
func Status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// IsNotFound reports whether ARM said the resource does not exist.
func IsNotFound(err error) bool { return Status(err) == http.StatusNotFound }

// IsDenied reports whether the identity lacks a permission.
func IsDenied(err error) bool {
	switch Code(err) {
	case "AuthorizationFailed", "LinkedAuthorizationFailed", "Forbidden":
		return true
	}
	return Status(err) == http.StatusForbidden
}

// Classify tells a retry loop whether err is worth another attempt and how
// long ARM asked to wait (Retry-After-ms, x-ms-retry-after-ms or
// Retry-After; 0 when absent). 429, retryable 409s, 5xx and timeouts are
// retried; everything else is final.
func Classify(err error) (retry bool, after time.Duration) {
	if err == nil {
		return false, 0
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		after = RetryAfter(re.RawResponse, time.Now())
		switch {
		case re.StatusCode == http.StatusTooManyRequests:
			return true, after
		case re.StatusCode == http.StatusConflict && retryable409[re.ErrorCode]:
			return true, after
		case re.StatusCode >= 500:
			return true, after
		}
		return false, 0
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true, 0
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, 0
	}
	return false, 0
}

// maxRetryAfterSeconds bounds a Retry-After so the duration cannot overflow.
const maxRetryAfterSeconds = 24 * 60 * 60

// RetryAfter reads the wait ARM asked for from a response's headers.
func RetryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp == nil {
		return 0
	}
	for _, h := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := strings.TrimSpace(resp.Header.Get(h)); v != "" {
			if ms, err := strconv.Atoi(v); err == nil && ms > 0 {
				return time.Duration(min(ms, maxRetryAfterSeconds*1000)) * time.Millisecond
			}
		}
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s > 0 {
			return time.Duration(min(s, maxRetryAfterSeconds)) * time.Second
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
