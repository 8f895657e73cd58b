package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
)

func respErr(status int, code string, h http.Header) error {
	if h == nil {
		h = http.Header{}
	}
	return fmt.Errorf("PUT route: %w", &azcore.ResponseError{StatusCode: status, ErrorCode: code, RawResponse: &http.Response{StatusCode: status, Header: h}})
}

func TestClassify(t *testing.T) {
	for _, x := range []struct {
		err   error
		retry bool
		after time.Duration
	}{
		{respErr(429, "TooManyRequests", http.Header{"Retry-After": {"7"}}), true, 7 * time.Second},
		{respErr(409, "AnotherOperationInProgress", http.Header{"Retry-After-Ms": {"1500"}}), true, 1500 * time.Millisecond},
		{respErr(409, "InUseSubnetCannotBeDeleted", nil), false, 0},
		{respErr(500, "InternalServerError", nil), true, 0},
		{respErr(403, "AuthorizationFailed", nil), false, 0},
		{respErr(404, "ResourceNotFound", nil), false, 0},
		{context.DeadlineExceeded, true, 0},
		{errors.New("other"), false, 0},
	} {
		retry, after := Classify(x.err)
		if retry != x.retry || after != x.after {
			t.Errorf("Classify(%v) = %v %s, want %v %s", x.err, retry, after, x.retry, x.after)
		}
	}
	if !IsDenied(respErr(403, "AuthorizationFailed", nil)) || !IsNotFound(respErr(404, "NotFound", nil)) {
		t.Error("IsDenied/IsNotFound")
	}
}

func TestParseID(t *testing.T) {
	id := "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.Network/routeTables/rt-a"
	r, err := ParseID(id, "Microsoft.Network/routeTables")
	if err != nil || r.ResourceGroup != "rg1" || r.Name != "rt-a" {
		t.Fatalf("ParseID = %+v, %v", r, err)
	}
	if _, err := ParseID(id, "Microsoft.Network/networkInterfaces"); err == nil {
		t.Error("type mismatch accepted")
	}
	if _, err := ParseID("rt-a", "Microsoft.Network/routeTables"); err == nil {
		t.Error("bare name accepted")
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("empty subscription accepted")
	}
	c, err := New(Options{SubscriptionID: "s", Credential: &azfake.TokenCredential{}, Endpoint: "http://127.0.0.1:1"})
	if err != nil || c.PollFrequency != time.Second {
		t.Fatalf("New = %+v, %v", c, err)
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "0", "", "Wed, 21 Oct 2015 07:28:00 GMT", "-3", "1e9"} {
		f.Add(s, s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ra, ms string) {
		h := http.Header{}
		h.Set("Retry-After", ra)
		h.Set("Retry-After-Ms", ms)
		if d := RetryAfter(&http.Response{Header: h}, now); d < 0 {
			t.Fatalf("negative wait %s", d)
		}
	})
}
