package httpserve

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestServerHasEveryLimit(t *testing.T) {
	s := New(http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 64<<10 {
		t.Fatalf("server limits: %+v", s)
	}
}

// Past the cap a connection is closed at once; closing one frees its
// slot.
func TestLimitClosesConnectionsPastTheCap(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Limit(raw, 2)
	defer l.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	a1, a2 := <-accepted, <-accepted
	over := dial()
	// The third is accepted and closed by the listener: the client reads EOF.
	if n, err := over.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("connection past the cap: read %d, %v", n, err)
	}
	if l.Dropped() != 1 {
		t.Fatalf("dropped %d", l.Dropped())
	}
	a1.Close()
	dial()
	a3 := <-accepted
	a2.Close()
	a3.Close()
	if l.Dropped() != 1 {
		t.Fatalf("dropped %d after a slot was freed", l.Dropped())
	}
}

func TestBearer(t *testing.T) {
	h := Bearer("0123456789abcdef", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	for _, c := range []struct {
		auth string
		code int
	}{{"", 401}, {"Bearer wrong", 401}, {"0123456789abcdef", 401}, {"Bearer 0123456789abcdef", 200}} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.code {
			t.Errorf("Authorization %q: %d, want %d", c.auth, w.Code, c.code)
		}
	}
}
