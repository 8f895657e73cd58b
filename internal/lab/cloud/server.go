// Package cloud is the lab's emulated cloud control plane: an HTTP server
// that answers the subset of the EC2 Query API and of Azure Resource
// Manager that baton's routes and addresses actions call, so the real
// aws-sdk-go-v2 and azure-sdk-for-go clients drive it unchanged.
//
// The server can answer slowly (a fixed latency per request), throttle
// (a token bucket answering EC2's RequestLimitExceeded or ARM's 429 with
// Retry-After) and counts every call. Every route change is reported to
// a hook: the Fabric (Linux) turns it into a kernel route in the lab's
// fabric router namespace, so packets follow the emulated route table the
// way a VPC router follows its route tables.
package cloud

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/aws/awstest"
)

// Options configure a Server. The zero value answers at once, without
// throttling.
type Options struct {
	// Latency is added to every answer, throttled ones included.
	Latency time.Duration
	// Rate is the sustained request rate allowed (requests per second);
	// 0 means no throttling.
	Rate float64
	// Burst is the token bucket's capacity, default max(1, Rate): at most
	// Burst requests pass at once after a quiet period.
	Burst int
	// Clock times latency and the throttle; default clock.Real.
	Clock clock.Clock
	// Logger receives one debug line per request.
	Logger *slog.Logger
	// ARMPolls is how many times a long-running ARM operation answers
	// InProgress before it succeeds, default 1.
	ARMPolls int
	// ARMOperation, when set, emulates Azure's timing instead: every write
	// is a long-running operation that takes this long (on Clock), and a
	// route table takes one write at a time: another write while one runs
	// answers 409 AnotherOperationInProgress with Retry-After.
	ARMOperation time.Duration
}

// RouteChange is one route as it is after a successful change.
type RouteChange struct {
	Cloud       string // "aws" or "azure"
	Table       string // route table ID (AWS) or ARM resource ID (Azure)
	Destination string // CIDR prefix
	// Target is the ENI or instance ID (AWS), or the next-hop IP of a
	// VirtualAppliance route (Azure); "" when the route no longer sends
	// traffic to an appliance.
	Target string
}

// Fault decides the answer to one request before it is performed: a
// non-zero HTTP status with an error code replaces the normal answer.
// op is the EC2 action or "ARM <METHOD> <path>".
type Fault func(op string) (status int, code string)

// Counts are the requests a server has answered.
type Counts struct {
	Total      int            // every request, throttled ones included
	Throttled  int            // answered RequestLimitExceeded / 429
	Operations int            // ARM long-running operations started (writes accepted)
	ByOp       map[string]int // by EC2 action or ARM operation, throttled ones excluded
}

// Server is the emulated control plane. Create it with New.
type Server struct {
	opts Options
	clk  clock.Clock
	log  *slog.Logger
	ec2  *awstest.Fake
	arm  *armState

	mu       sync.Mutex
	tokens   float64
	last     time.Time
	counts   Counts
	fault    Fault
	onChange []func(RouteChange)
	reqSeq   int
	servers  []*http.Server
}

// New returns a server with empty state.
func New(o Options) *Server {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Burst <= 0 {
		o.Burst = max(1, int(math.Ceil(o.Rate)))
	}
	if o.ARMPolls <= 0 {
		o.ARMPolls = 1
	}
	s := &Server{
		opts:   o,
		clk:    o.Clock,
		log:    o.Logger.With("component", "cloud"),
		ec2:    awstest.New(),
		tokens: float64(o.Burst),
		last:   o.Clock.Now(),
		counts: Counts{ByOp: map[string]int{}},
	}
	s.arm = newARMState(s)
	return s
}

// EC2 is the server's EC2 state: add route tables, ENIs and Elastic IPs
// to it before clients call. Changes made through it directly are not
// reported to OnRouteChange hooks.
func (s *Server) EC2() *awstest.Fake { return s.ec2 }

// OnRouteChange registers fn to be called after every route a client
// changed (in the request's goroutine, before the client gets its answer).
func (s *Server) OnRouteChange(fn func(RouteChange)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, fn)
}

// SetFault installs (or with nil removes) a fault hook.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Counts returns a copy of the request counters.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	c.ByOp = maps.Clone(s.counts.ByOp)
	return c
}

// ResetCounts zeroes the request counters and refills the throttle bucket.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = Counts{ByOp: map[string]int{}}
	s.tokens = float64(s.opts.Burst)
	s.last = s.clk.Now()
}

func (s *Server) changed(c RouteChange) {
	s.mu.Lock()
	hooks := append([]func(RouteChange){}, s.onChange...)
	s.mu.Unlock()
	for _, fn := range hooks {
		fn(c)
	}
}

// admit takes a token for one request of op. It returns ok=false with
// how long until a token is available when the bucket is empty; a
// refused request does not consume a token, as EC2's bucket works.
func (s *Server) admit(op string) (ok bool, wait time.Duration, fault Fault, id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqSeq++
	id = s.reqSeq
	s.counts.Total++
	if s.opts.Rate > 0 {
		now := s.clk.Now()
		s.tokens = min(float64(s.opts.Burst), s.tokens+now.Sub(s.last).Seconds()*s.opts.Rate)
		s.last = now
		if s.tokens < 1 {
			s.counts.Throttled++
			return false, time.Duration((1 - s.tokens) / s.opts.Rate * float64(time.Second)), nil, id
		}
		s.tokens--
	}
	s.counts.ByOp[op]++
	return true, 0, s.fault, id
}

// delay waits out the configured latency, or until the client gives up.
func (s *Server) delay(r *http.Request) {
	if s.opts.Latency <= 0 {
		return
	}
	t := s.clk.NewTimer(s.opts.Latency)
	defer t.Stop()
	select {
	case <-t.C():
	case <-r.Context().Done():
	}
}

// ServeHTTP answers ARM requests (paths under /subscriptions/) and EC2
// Query API requests (everything else).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.delay(r)
	if strings.HasPrefix(strings.ToLower(r.URL.Path), "/subscriptions/") {
		s.arm.serve(w, r)
		return
	}
	s.serveEC2(w, r)
}

// Serve answers requests on l until Close. It returns http.ErrServerClosed
// after Close.
func (s *Server) Serve(l net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	if err := srv.Serve(l); err != nil {
		return fmt.Errorf("serving the emulated cloud on %s: %w", l.Addr(), err)
	}
	return nil
}

// Close stops every Serve.
func (s *Server) Close() error {
	s.mu.Lock()
	srvs := s.servers
	s.servers = nil
	s.mu.Unlock()
	var first error
	for _, srv := range srvs {
		if err := srv.Close(); err != nil && first == nil {
			first = fmt.Errorf("closing the emulated cloud: %w", err)
		}
	}
	return first
}
