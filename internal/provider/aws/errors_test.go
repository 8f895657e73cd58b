package aws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func apiErr(code string) error {
	return fmt.Errorf("operation error EC2: ReplaceRoute: %w", &smithy.GenericAPIError{Code: code, Message: "m"})
}

func httpErr(status int, retryAfter string) error {
	h := http.Header{}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: h}}, Err: errors.New("boom")}
}

func TestClassify(t *testing.T) {
	for _, x := range []struct {
		err   error
		retry bool
		after time.Duration
	}{
		{apiErr("RequestLimitExceeded"), true, 0},
		{apiErr("Throttling"), true, 0},
		{apiErr("InternalError"), true, 0},
		{apiErr("UnauthorizedOperation"), false, 0},
		{apiErr("InvalidRouteTableID.NotFound"), false, 0},
		{httpErr(503, "4"), true, 4 * time.Second},
		{httpErr(429, ""), true, 0},
		{httpErr(400, "4"), false, 0},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), true, 0},
		{context.Canceled, false, 0},
		{nil, false, 0},
	} {
		retry, after := Classify(x.err)
		if retry != x.retry || after != x.after {
			t.Errorf("Classify(%v) = %v %s, want %v %s", x.err, retry, after, x.retry, x.after)
		}
	}
	if !IsDenied(apiErr("UnauthorizedOperation")) || IsDenied(apiErr("Throttling")) {
		t.Error("IsDenied")
	}
	if !IsNotFound(apiErr("InvalidNetworkInterfaceID.NotFound")) || IsNotFound(apiErr("InternalError")) {
		t.Error("IsNotFound")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"3": 3 * time.Second, "": 0, "-1": 0, "soon": 0,
		now.Add(10 * time.Second).Format(http.TimeFormat): 10 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := ParseRetryAfter(v, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "", "Wed, 21 Oct 2015 07:28:00 GMT", "-5", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := ParseRetryAfter(v, now); d < 0 {
			t.Fatalf("negative wait %s for %q", d, v)
		}
	})
}
