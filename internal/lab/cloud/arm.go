package cloud

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v6"
)

// AzureRoute is one route of an emulated Azure route table.
type AzureRoute struct {
	Name        string
	Prefix      string // address prefix, a CIDR
	NextHopType string // "VirtualAppliance", "Internet", "VnetLocal", "None", ...
	NextHopIP   string // for VirtualAppliance
}

type armTable struct {
	id, name, location string
	tags               map[string]string
	routes             []AzureRoute
	etag               int       // grows on every applied write
	busyUntil          time.Time // end of the write in progress (ARMOperation)
}

func (t *armTable) etagString() string { return fmt.Sprintf(`W/"%d"`, t.etag) }

type armOp struct {
	left  int       // InProgress answers still to give (ARMPolls)
	due   time.Time // when it succeeds (ARMOperation)
	apply func()    // runs when the operation succeeds
	done  bool
}

type armState struct {
	s      *Server
	mu     sync.Mutex
	tables map[string]*armTable // by lower-case resource ID
	ops    map[string]*armOp
	opSeq  int
}

func newARMState(s *Server) *armState {
	return &armState{s: s, tables: map[string]*armTable{}, ops: map[string]*armOp{}}
}

// TableID returns the ARM resource ID of a route table.
func TableID(subscription, group, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/routeTables/%s", subscription, group, name)
}

// AddAzureTable adds (or replaces) an Azure route table; id is its
// resource ID as TableID builds it.
func (s *Server) AddAzureTable(id, location string, tags map[string]string, routes ...AzureRoute) error {
	p, err := parseARMPath(id)
	if err != nil || p.table == "" || p.route != "" {
		return fmt.Errorf("adding Azure route table %q: not a route table resource ID", id)
	}
	s.arm.mu.Lock()
	defer s.arm.mu.Unlock()
	s.arm.tables[strings.ToLower(id)] = &armTable{id: id, name: p.table, location: location, tags: tags, routes: slices.Clone(routes)}
	return nil
}

// AzureRoutes returns the routes of an emulated Azure route table.
func (s *Server) AzureRoutes(id string) []AzureRoute {
	s.arm.mu.Lock()
	defer s.arm.mu.Unlock()
	if t := s.arm.tables[strings.ToLower(id)]; t != nil {
		return slices.Clone(t.routes)
	}
	return nil
}

// armPath is a parsed ARM request path.
type armPath struct {
	sub, group, table, route string
	list                     bool   // a collection of route tables
	op                       string // operation ID of a long-running operation
}

// parseARMPath recognises the paths the emulator serves:
//
//	/subscriptions/S/providers/Microsoft.Network/routeTables
//	/subscriptions/S/providers/Microsoft.Network/locations/L/operations/ID
//	/subscriptions/S/resourceGroups/G/providers/Microsoft.Network/routeTables[/T[/routes/R]]
func parseARMPath(path string) (armPath, error) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	var p armPath
	bad := fmt.Errorf("path %q is not an emulated ARM resource", path)
	eq := strings.EqualFold
	if len(seg) < 4 || !eq(seg[0], "subscriptions") || seg[1] == "" {
		return p, bad
	}
	p.sub = seg[1]
	rest := seg[2:]
	if eq(rest[0], "resourceGroups") {
		if len(rest) < 2 || rest[1] == "" {
			return p, bad
		}
		p.group = rest[1]
		rest = rest[2:]
	}
	if len(rest) < 2 || !eq(rest[0], "providers") || !eq(rest[1], "Microsoft.Network") {
		return p, bad
	}
	rest = rest[2:]
	switch {
	case len(rest) == 4 && p.group == "" && eq(rest[0], "locations") && eq(rest[2], "operations") && rest[3] != "":
		p.op = rest[3]
	case len(rest) == 1 && eq(rest[0], "routeTables"):
		p.list = true
	case len(rest) == 2 && eq(rest[0], "routeTables") && p.group != "" && rest[1] != "":
		p.table = rest[1]
	case len(rest) == 4 && eq(rest[0], "routeTables") && p.group != "" && rest[1] != "" && eq(rest[2], "routes") && rest[3] != "":
		p.table, p.route = rest[1], rest[3]
	default:
		return p, bad
	}
	return p, nil
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func armJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (t *armTable) model() *armnetwork.RouteTable {
	rt := &armnetwork.RouteTable{
		ID: to.Ptr(t.id), Name: to.Ptr(t.name), Type: to.Ptr("Microsoft.Network/routeTables"), Location: to.Ptr(t.location), Etag: to.Ptr(t.etagString()),
		Tags:       map[string]*string{},
		Properties: &armnetwork.RouteTablePropertiesFormat{ProvisioningState: to.Ptr(armnetwork.ProvisioningStateSucceeded)},
	}
	for k, v := range t.tags {
		rt.Tags[k] = to.Ptr(v)
	}
	for _, r := range t.routes {
		rt.Properties.Routes = append(rt.Properties.Routes, t.routeModel(r, armnetwork.ProvisioningStateSucceeded))
	}
	return rt
}

func (t *armTable) routeModel(r AzureRoute, state armnetwork.ProvisioningState) *armnetwork.Route {
	m := &armnetwork.Route{
		ID: to.Ptr(t.id + "/routes/" + r.Name), Name: to.Ptr(r.Name), Type: to.Ptr("Microsoft.Network/routeTables/routes"),
		Properties: &armnetwork.RoutePropertiesFormat{
			AddressPrefix: to.Ptr(r.Prefix), NextHopType: to.Ptr(armnetwork.RouteNextHopType(r.NextHopType)), ProvisioningState: to.Ptr(state),
		},
	}
	if r.NextHopIP != "" {
		m.Properties.NextHopIPAddress = to.Ptr(r.NextHopIP)
	}
	return m
}

func (a *armState) serve(w http.ResponseWriter, r *http.Request) {
	p, err := parseARMPath(r.URL.Path)
	op := "ARM " + r.Method + " " + armOpName(p)
	ok, wait, fault, id := a.s.admit(op)
	log := a.s.log.With("request", id, "op", op)
	if !ok {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		log.Debug("throttled", "reason", "request limit", "retry_after", secs)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		armError(w, http.StatusTooManyRequests, "TooManyRequests", "The request is being throttled.")
		return
	}
	if fault != nil {
		if st, code := fault(op); st != 0 {
			log.Debug("fault injected", "status", st, "code", code)
			armError(w, st, code, "injected fault")
			return
		}
	}
	if err != nil {
		armError(w, http.StatusNotFound, "InvalidResourceType", err.Error())
		return
	}
	switch {
	case p.op != "" && r.Method == http.MethodGet:
		a.serveOp(w, p.op)
	case p.list && r.Method == http.MethodGet:
		a.serveList(w, p)
	case p.table != "" && p.route == "" && r.Method == http.MethodGet:
		a.mu.Lock()
		t := a.tables[strings.ToLower(TableID(p.sub, p.group, p.table))]
		var m *armnetwork.RouteTable
		if t != nil {
			m = t.model()
		}
		a.mu.Unlock()
		if m == nil {
			armError(w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource 'Microsoft.Network/routeTables/%s' under resource group '%s' was not found.", p.table, p.group))
			return
		}
		armJSON(w, http.StatusOK, m)
	case p.route != "" && r.Method == http.MethodGet:
		a.serveRouteGet(w, p)
	case p.route != "" && r.Method == http.MethodPut:
		a.serveRoutePut(w, r, p)
	case p.table != "" && p.route == "" && r.Method == http.MethodPut:
		a.serveTablePut(w, r, p)
	default:
		armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not emulated on "+r.URL.Path)
	}
}

func armOpName(p armPath) string {
	switch {
	case p.op != "":
		return "operation"
	case p.list:
		return "routeTables"
	case p.route != "":
		return "routes"
	case p.table != "":
		return "routeTable"
	}
	return "unknown"
}

func (a *armState) serveList(w http.ResponseWriter, p armPath) {
	a.mu.Lock()
	var out []*armnetwork.RouteTable
	keys := make([]string, 0, len(a.tables))
	for k := range a.tables {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t := a.tables[k]
		tp, _ := parseARMPath(t.id)
		if strings.EqualFold(tp.sub, p.sub) && (p.group == "" || strings.EqualFold(tp.group, p.group)) {
			out = append(out, t.model())
		}
	}
	a.mu.Unlock()
	armJSON(w, http.StatusOK, armnetwork.RouteTableListResult{Value: out})
}

func (a *armState) serveRouteGet(w http.ResponseWriter, p armPath) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tables[strings.ToLower(TableID(p.sub, p.group, p.table))]
	if t == nil {
		armError(w, http.StatusNotFound, "ResourceNotFound", "route table "+p.table+" was not found")
		return
	}
	for _, r := range t.routes {
		if strings.EqualFold(r.Name, p.route) {
			armJSON(w, http.StatusOK, t.routeModel(r, armnetwork.ProvisioningStateSucceeded))
			return
		}
	}
	armError(w, http.StatusNotFound, "NotFound", "route "+p.route+" was not found in "+p.table)
}

// serveRoutePut starts a long-running create-or-update of a route: 201
// with an Azure-AsyncOperation URL; the change is applied when the
// operation succeeds, after ARMPolls InProgress answers.
func (a *armState) serveRoutePut(w http.ResponseWriter, r *http.Request, p armPath) {
	var in armnetwork.Route
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err != nil || in.Properties == nil || in.Properties.AddressPrefix == nil || in.Properties.NextHopType == nil {
		armError(w, http.StatusBadRequest, "InvalidRequestFormat", "a route needs properties.addressPrefix and properties.nextHopType")
		return
	}
	nr := AzureRoute{Name: p.route, Prefix: *in.Properties.AddressPrefix, NextHopType: string(*in.Properties.NextHopType)}
	if in.Properties.NextHopIPAddress != nil {
		nr.NextHopIP = *in.Properties.NextHopIPAddress
	}
	if nr.NextHopType == string(armnetwork.RouteNextHopTypeVirtualAppliance) && nr.NextHopIP == "" {
		armError(w, http.StatusBadRequest, "InvalidRouteNextHop", "a VirtualAppliance route needs nextHopIpAddress")
		return
	}
	key := strings.ToLower(TableID(p.sub, p.group, p.table))
	a.mu.Lock()
	t := a.tables[key]
	if t == nil {
		a.mu.Unlock()
		armError(w, http.StatusNotFound, "ResourceNotFound", "route table "+p.table+" was not found")
		return
	}
	if a.busyLocked(w, t) {
		a.mu.Unlock()
		return
	}
	opID := a.startLocked(t, func() {
		a.mu.Lock()
		i := slices.IndexFunc(t.routes, func(x AzureRoute) bool { return strings.EqualFold(x.Name, nr.Name) })
		if i >= 0 {
			t.routes[i] = nr
		} else {
			t.routes = append(t.routes, nr)
		}
		t.etag++
		id := t.id
		a.mu.Unlock()
		a.s.changed(RouteChange{Cloud: "azure", Table: id, Destination: nr.Prefix, Target: applianceTarget(nr)})
	})
	model := t.routeModel(nr, armnetwork.ProvisioningStateUpdating)
	loc := t.location
	a.mu.Unlock()
	w.Header().Set("Azure-AsyncOperation", fmt.Sprintf("http://%s/subscriptions/%s/providers/Microsoft.Network/locations/%s/operations/%s?api-version=2024-05-01", r.Host, p.sub, loc, opID))
	armJSON(w, http.StatusCreated, model)
}

func applianceTarget(r AzureRoute) string {
	if r.NextHopType == string(armnetwork.RouteNextHopTypeVirtualAppliance) {
		return r.NextHopIP
	}
	return ""
}

// busyLocked answers 409 AnotherOperationInProgress when a write on t is
// still running (ARMOperation).
func (a *armState) busyLocked(w http.ResponseWriter, t *armTable) bool {
	if a.s.opts.ARMOperation <= 0 {
		return false
	}
	left := t.busyUntil.Sub(a.s.clk.Now())
	if left <= 0 {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(left.Seconds())))))
	armError(w, http.StatusConflict, "AnotherOperationInProgress", "Operation on route table "+t.name+" is in progress; retry later.")
	return true
}

// startLocked starts a long-running operation on t that runs apply when
// it succeeds, and returns its ID.
func (a *armState) startLocked(t *armTable, apply func()) string {
	a.opSeq++
	id := fmt.Sprintf("op-%06d", a.opSeq)
	op := &armOp{left: a.s.opts.ARMPolls, apply: apply}
	if d := a.s.opts.ARMOperation; d > 0 {
		op.due = a.s.clk.Now().Add(d)
		t.busyUntil = op.due
	}
	a.ops[id] = op
	a.s.mu.Lock()
	a.s.counts.Operations++
	a.s.mu.Unlock()
	return id
}

// serveTablePut starts a long-running write of a whole route table (its
// routes and tags), conditional on If-Match when the client sends it.
func (a *armState) serveTablePut(w http.ResponseWriter, r *http.Request, p armPath) {
	var in armnetwork.RouteTable
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &in)
	}
	if err != nil {
		armError(w, http.StatusBadRequest, "InvalidRequestFormat", "the body is not a route table: "+err.Error())
		return
	}
	var routes []AzureRoute
	if in.Properties != nil {
		for _, rt := range in.Properties.Routes {
			if rt == nil || rt.Name == nil || rt.Properties == nil || rt.Properties.AddressPrefix == nil || rt.Properties.NextHopType == nil {
				armError(w, http.StatusBadRequest, "InvalidRequestFormat", "every route needs a name, properties.addressPrefix and properties.nextHopType")
				return
			}
			nr := AzureRoute{Name: *rt.Name, Prefix: *rt.Properties.AddressPrefix, NextHopType: string(*rt.Properties.NextHopType)}
			if rt.Properties.NextHopIPAddress != nil {
				nr.NextHopIP = *rt.Properties.NextHopIPAddress
			}
			if nr.NextHopType == string(armnetwork.RouteNextHopTypeVirtualAppliance) && nr.NextHopIP == "" {
				armError(w, http.StatusBadRequest, "InvalidRouteNextHop", "route "+nr.Name+": a VirtualAppliance route needs nextHopIpAddress")
				return
			}
			routes = append(routes, nr)
		}
	}
	tags := map[string]string{}
	for k, v := range in.Tags {
		if v != nil {
			tags[k] = *v
		}
	}
	a.mu.Lock()
	t := a.tables[strings.ToLower(TableID(p.sub, p.group, p.table))]
	if t == nil {
		a.mu.Unlock()
		armError(w, http.StatusNotFound, "ResourceNotFound", "route table "+p.table+" was not found")
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != t.etagString() {
		a.mu.Unlock()
		armError(w, http.StatusPreconditionFailed, "PreconditionFailed", "the ETag "+m+" does not match route table "+p.table)
		return
	}
	if a.busyLocked(w, t) {
		a.mu.Unlock()
		return
	}
	opID := a.startLocked(t, func() {
		a.mu.Lock()
		old := map[string]string{}
		for _, x := range t.routes {
			old[x.Prefix] = applianceTarget(x)
		}
		t.routes, t.tags = routes, tags
		t.etag++
		id := t.id
		a.mu.Unlock()
		for _, x := range routes {
			if tgt, ok := old[x.Prefix]; !ok || tgt != applianceTarget(x) {
				a.s.changed(RouteChange{Cloud: "azure", Table: id, Destination: x.Prefix, Target: applianceTarget(x)})
			}
		}
	})
	model := t.model()
	model.Properties.ProvisioningState = to.Ptr(armnetwork.ProvisioningStateUpdating)
	loc := t.location
	a.mu.Unlock()
	w.Header().Set("Azure-AsyncOperation", fmt.Sprintf("http://%s/subscriptions/%s/providers/Microsoft.Network/locations/%s/operations/%s?api-version=2024-05-01", r.Host, p.sub, loc, opID))
	armJSON(w, http.StatusCreated, model)
}

func (a *armState) serveOp(w http.ResponseWriter, id string) {
	a.mu.Lock()
	op := a.ops[id]
	if op == nil {
		a.mu.Unlock()
		armError(w, http.StatusNotFound, "OperationNotFound", "operation "+id+" was not found")
		return
	}
	if a.s.opts.ARMOperation > 0 {
		if left := op.due.Sub(a.s.clk.Now()); left > 0 {
			a.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(left.Seconds())))))
			armJSON(w, http.StatusOK, map[string]string{"status": "InProgress"})
			return
		}
	} else if op.left > 0 {
		op.left--
		a.mu.Unlock()
		armJSON(w, http.StatusOK, map[string]string{"status": "InProgress"})
		return
	}
	apply := op.apply
	first := !op.done
	op.done = true
	a.mu.Unlock()
	if first {
		apply()
	}
	armJSON(w, http.StatusOK, map[string]string{"status": "Succeeded"})
}
