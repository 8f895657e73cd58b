package cloud

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

const ec2NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

// maxListItems bounds the members of one list parameter (EC2 allows 1000
// filter values; nothing baton sends comes close).
const maxListItems = 1000

// listParam reads the EC2 Query list name.1, name.2, ... The members must
// be numbered from 1 without gaps.
func listParam(form url.Values, name string) ([]string, error) {
	var out []string
	for k := range form {
		rest, ok := strings.CutPrefix(k, name+".")
		if !ok || strings.Contains(rest, ".") {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 1 || n > maxListItems {
			return nil, fmt.Errorf("parameter %s: bad member index %q", k, rest)
		}
		if n > len(out) {
			out = append(out, make([]string, n-len(out))...)
		}
		out[n-1] = form.Get(k)
	}
	for i, v := range out {
		if v == "" {
			return nil, fmt.Errorf("parameter %s.%d: missing or empty", name, i+1)
		}
	}
	return out, nil
}

// filterParam reads Filter.N.Name and Filter.N.Value.M.
func filterParam(form url.Values) ([]types.Filter, error) {
	var names []string
	for k := range form {
		rest, ok := strings.CutPrefix(k, "Filter.")
		if !ok {
			continue
		}
		idx, field, ok := strings.Cut(rest, ".")
		if !ok || (field != "Name" && !strings.HasPrefix(field, "Value.")) {
			return nil, fmt.Errorf("parameter %s: unknown filter field", k)
		}
		n, err := strconv.Atoi(idx)
		if err != nil || n < 1 || n > maxListItems {
			return nil, fmt.Errorf("parameter %s: bad filter index %q", k, idx)
		}
		if n > len(names) {
			names = append(names, make([]string, n-len(names))...)
		}
		if field == "Name" {
			names[n-1] = form.Get(k)
		}
	}
	var out []types.Filter
	for i, name := range names {
		if name == "" {
			return nil, fmt.Errorf("parameter Filter.%d.Name: missing", i+1)
		}
		vals, err := listParam(form, fmt.Sprintf("Filter.%d.Value", i+1))
		if err != nil {
			return nil, err
		}
		if len(vals) == 0 {
			return nil, fmt.Errorf("parameter Filter.%d: no values", i+1)
		}
		out = append(out, types.Filter{Name: awssdk.String(name), Values: vals})
	}
	return out, nil
}

func optString(form url.Values, name string) *string {
	if v := form.Get(name); v != "" {
		return awssdk.String(v)
	}
	return nil
}

func optBool(form url.Values, name string) (*bool, error) {
	v := form.Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, fmt.Errorf("parameter %s: %q is not a boolean", name, v)
	}
	return &b, nil
}

// ec2Request is one decoded EC2 Query request: the action and the SDK
// input it carries.
type ec2Request struct {
	Action string
	Input  any
}

// errBadParam marks a request the emulator cannot decode.
var errBadParam = errors.New("invalid parameter")

// decodeEC2 decodes the form of an EC2 Query request into the SDK input
// type of its action.
func decodeEC2(form url.Values) (ec2Request, error) {
	req := ec2Request{Action: form.Get("Action")}
	bad := func(err error) (ec2Request, error) { return req, fmt.Errorf("%w: %w", errBadParam, err) }
	switch req.Action {
	case "DescribeRouteTables":
		in := &ec2.DescribeRouteTablesInput{NextToken: optString(form, "NextToken")}
		var err error
		if in.RouteTableIds, err = listParam(form, "RouteTableId"); err != nil {
			return bad(err)
		}
		if in.Filters, err = filterParam(form); err != nil {
			return bad(err)
		}
		req.Input = in
	case "ReplaceRoute", "CreateRoute":
		table, v4, v6 := optString(form, "RouteTableId"), optString(form, "DestinationCidrBlock"), optString(form, "DestinationIpv6CidrBlock")
		eni, inst := optString(form, "NetworkInterfaceId"), optString(form, "InstanceId")
		if table == nil || (v4 == nil) == (v6 == nil) {
			return bad(errors.New("RouteTableId and exactly one of DestinationCidrBlock, DestinationIpv6CidrBlock are required"))
		}
		if req.Action == "ReplaceRoute" {
			req.Input = &ec2.ReplaceRouteInput{RouteTableId: table, DestinationCidrBlock: v4, DestinationIpv6CidrBlock: v6, NetworkInterfaceId: eni, InstanceId: inst}
		} else {
			req.Input = &ec2.CreateRouteInput{RouteTableId: table, DestinationCidrBlock: v4, DestinationIpv6CidrBlock: v6, NetworkInterfaceId: eni, InstanceId: inst}
		}
	case "DescribeNetworkInterfaces":
		ids, err := listParam(form, "NetworkInterfaceId")
		if err != nil {
			return bad(err)
		}
		req.Input = &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids}
	case "AssignPrivateIpAddresses":
		ips, err := listParam(form, "PrivateIpAddress")
		if err != nil {
			return bad(err)
		}
		re, err := optBool(form, "AllowReassignment")
		if err != nil {
			return bad(err)
		}
		eni := optString(form, "NetworkInterfaceId")
		if eni == nil {
			return bad(errors.New("NetworkInterfaceId is required"))
		}
		req.Input = &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: ips, AllowReassignment: re}
	case "DescribeAddresses":
		allocs, err := listParam(form, "AllocationId")
		if err != nil {
			return bad(err)
		}
		ips, err := listParam(form, "PublicIp")
		if err != nil {
			return bad(err)
		}
		req.Input = &ec2.DescribeAddressesInput{AllocationIds: allocs, PublicIps: ips}
	case "AssociateAddress":
		re, err := optBool(form, "AllowReassociation")
		if err != nil {
			return bad(err)
		}
		in := &ec2.AssociateAddressInput{
			AllocationId: optString(form, "AllocationId"), NetworkInterfaceId: optString(form, "NetworkInterfaceId"),
			PrivateIpAddress: optString(form, "PrivateIpAddress"), AllowReassociation: re,
		}
		if in.AllocationId == nil || in.NetworkInterfaceId == nil {
			return bad(errors.New("AllocationId and NetworkInterfaceId are required"))
		}
		req.Input = in
	case "":
		return bad(errors.New("missing Action parameter"))
	default:
		return req, fmt.Errorf("action %q is not emulated", req.Action)
	}
	return req, nil
}

// serveEC2 answers one EC2 Query API request.
func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		ec2Error(w, http.StatusMethodNotAllowed, "InvalidAction", "the emulated EC2 takes POST requests", 0)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		ec2Error(w, http.StatusBadRequest, "InvalidRequest", "reading the request body: "+err.Error(), 0)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		ec2Error(w, http.StatusBadRequest, "InvalidRequest", "parsing the request body: "+err.Error(), 0)
		return
	}
	action := form.Get("Action")
	ok, wait, fault, id := s.admit(action)
	log := s.log.With("request", id, "op", action)
	if !ok {
		log.Debug("throttled", "reason", "request limit", "token_in", wait)
		ec2Error(w, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.", id)
		return
	}
	if fault != nil {
		if st, code := fault(action); st != 0 {
			log.Debug("fault injected", "status", st, "code", code)
			ec2Error(w, st, code, "injected fault", id)
			return
		}
	}
	req, err := decodeEC2(form)
	if err != nil {
		code := "InvalidParameterValue"
		if !errors.Is(err, errBadParam) {
			code = "InvalidAction"
		}
		ec2Error(w, http.StatusBadRequest, code, err.Error(), id)
		return
	}
	out, err := s.performEC2(r.Context(), req)
	if err != nil {
		var ae smithy.APIError
		code, msg, st := "InternalError", err.Error(), http.StatusInternalServerError
		if errors.As(err, &ae) {
			code, msg, st = ae.ErrorCode(), ae.ErrorMessage(), http.StatusBadRequest
			if code == "UnauthorizedOperation" {
				st = http.StatusForbidden
			}
		}
		log.Debug("request failed", "code", code, "reason", msg)
		ec2Error(w, st, code, msg, id)
		return
	}
	log.Debug("request done")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(out)
}

func requestID(id int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", id) }

func ec2Error(w http.ResponseWriter, status int, code, msg string, id int) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	doc := ec2ErrorDoc{RequestID: requestID(id)}
	doc.Errors.Error = []ec2ErrorItem{{Code: code, Message: msg}}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(doc)
}

type ec2ErrorDoc struct {
	XMLName xml.Name `xml:"Response"`
	Errors  struct {
		Error []ec2ErrorItem `xml:"Error"`
	} `xml:"Errors"`
	RequestID string `xml:"RequestID"`
}

type ec2ErrorItem struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// performEC2 runs a decoded request against the state and returns the
// XML document to answer with.
func (s *Server) performEC2(ctx context.Context, req ec2Request) (any, error) {
	rid := requestID(s.Counts().Total)
	switch in := req.Input.(type) {
	case *ec2.DescribeRouteTablesInput:
		out, err := s.ec2.DescribeRouteTables(ctx, in)
		if err != nil {
			return nil, err
		}
		doc := xmlDescribeRouteTables{XMLNS: ec2NS, RequestID: rid}
		for _, rt := range out.RouteTables {
			doc.Tables = append(doc.Tables, toXMLTable(rt))
		}
		return doc, nil
	case *ec2.ReplaceRouteInput:
		if _, err := s.ec2.ReplaceRoute(ctx, in); err != nil {
			return nil, err
		}
		s.routeChanged(awssdk.ToString(in.RouteTableId), in.DestinationCidrBlock, in.DestinationIpv6CidrBlock)
		return xmlReturn{XMLName: xml.Name{Local: "ReplaceRouteResponse"}, XMLNS: ec2NS, RequestID: rid, Return: true}, nil
	case *ec2.CreateRouteInput:
		if _, err := s.ec2.CreateRoute(ctx, in); err != nil {
			return nil, err
		}
		s.routeChanged(awssdk.ToString(in.RouteTableId), in.DestinationCidrBlock, in.DestinationIpv6CidrBlock)
		return xmlReturn{XMLName: xml.Name{Local: "CreateRouteResponse"}, XMLNS: ec2NS, RequestID: rid, Return: true}, nil
	case *ec2.DescribeNetworkInterfacesInput:
		out, err := s.ec2.DescribeNetworkInterfaces(ctx, in)
		if err != nil {
			return nil, err
		}
		doc := xmlDescribeENIs{XMLNS: ec2NS, RequestID: rid}
		for _, n := range out.NetworkInterfaces {
			x := xmlENI{ID: awssdk.ToString(n.NetworkInterfaceId), PrivateIP: awssdk.ToString(n.PrivateIpAddress), Status: "in-use"}
			for _, a := range n.PrivateIpAddresses {
				x.IPs = append(x.IPs, xmlENIAddr{IP: awssdk.ToString(a.PrivateIpAddress), Primary: awssdk.ToBool(a.Primary)})
			}
			doc.ENIs = append(doc.ENIs, x)
		}
		return doc, nil
	case *ec2.AssignPrivateIpAddressesInput:
		if _, err := s.ec2.AssignPrivateIpAddresses(ctx, in); err != nil {
			return nil, err
		}
		doc := xmlAssign{XMLNS: ec2NS, RequestID: rid, Return: true, ENI: awssdk.ToString(in.NetworkInterfaceId)}
		for _, ip := range in.PrivateIpAddresses {
			doc.Assigned = append(doc.Assigned, xmlIP{IP: ip})
		}
		return doc, nil
	case *ec2.DescribeAddressesInput:
		out, err := s.ec2.DescribeAddresses(ctx, in)
		if err != nil {
			return nil, err
		}
		doc := xmlDescribeAddresses{XMLNS: ec2NS, RequestID: rid}
		for _, a := range out.Addresses {
			doc.Addresses = append(doc.Addresses, xmlAddress{
				PublicIP: awssdk.ToString(a.PublicIp), AllocationID: awssdk.ToString(a.AllocationId), Domain: "vpc",
				AssociationID: awssdk.ToString(a.AssociationId), ENI: awssdk.ToString(a.NetworkInterfaceId), PrivateIP: awssdk.ToString(a.PrivateIpAddress),
			})
		}
		return doc, nil
	case *ec2.AssociateAddressInput:
		out, err := s.ec2.AssociateAddress(ctx, in)
		if err != nil {
			return nil, err
		}
		return xmlAssociate{XMLNS: ec2NS, RequestID: rid, Return: true, AssociationID: awssdk.ToString(out.AssociationId)}, nil
	}
	return nil, fmt.Errorf("no handler for %s", req.Action)
}

// routeChanged reports the route's new target to the hooks.
func (s *Server) routeChanged(table string, v4, v6 *string) {
	dst := awssdk.ToString(v4)
	if dst == "" {
		dst = awssdk.ToString(v6)
	}
	tgt := s.ec2.Target(table, dst)
	if !strings.HasPrefix(tgt, "eni-") && !strings.HasPrefix(tgt, "i-") {
		tgt = ""
	}
	s.changed(RouteChange{Cloud: "aws", Table: table, Destination: dst, Target: tgt})
}

// The XML documents below follow the EC2 API's response shapes
// (namespace 2016-11-15, lists as <xxxSet><item>…</item></xxxSet>).

type xmlReturn struct {
	XMLName   xml.Name
	XMLNS     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
	Return    bool   `xml:"return"`
}

type xmlDescribeRouteTables struct {
	XMLName   xml.Name   `xml:"DescribeRouteTablesResponse"`
	XMLNS     string     `xml:"xmlns,attr"`
	RequestID string     `xml:"requestId"`
	Tables    []xmlTable `xml:"routeTableSet>item"`
}

type xmlTable struct {
	ID     string     `xml:"routeTableId"`
	VPC    string     `xml:"vpcId"`
	Owner  string     `xml:"ownerId"`
	Routes []xmlRoute `xml:"routeSet>item"`
	Tags   []xmlTag   `xml:"tagSet>item"`
}

type xmlRoute struct {
	Dst     string `xml:"destinationCidrBlock,omitempty"`
	Dst6    string `xml:"destinationIpv6CidrBlock,omitempty"`
	Gateway string `xml:"gatewayId,omitempty"`
	Inst    string `xml:"instanceId,omitempty"`
	ENI     string `xml:"networkInterfaceId,omitempty"`
	State   string `xml:"state"`
	Origin  string `xml:"origin"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func toXMLTable(rt types.RouteTable) xmlTable {
	x := xmlTable{ID: awssdk.ToString(rt.RouteTableId), VPC: awssdk.ToString(rt.VpcId), Owner: "000000000000"}
	for _, r := range rt.Routes {
		origin := "CreateRoute"
		if awssdk.ToString(r.GatewayId) == "local" {
			origin = "CreateRouteTable"
		}
		x.Routes = append(x.Routes, xmlRoute{
			Dst: awssdk.ToString(r.DestinationCidrBlock), Dst6: awssdk.ToString(r.DestinationIpv6CidrBlock),
			Gateway: awssdk.ToString(r.GatewayId), Inst: awssdk.ToString(r.InstanceId), ENI: awssdk.ToString(r.NetworkInterfaceId),
			State: "active", Origin: origin,
		})
	}
	for _, t := range rt.Tags {
		x.Tags = append(x.Tags, xmlTag{Key: awssdk.ToString(t.Key), Value: awssdk.ToString(t.Value)})
	}
	return x
}

type xmlDescribeENIs struct {
	XMLName   xml.Name `xml:"DescribeNetworkInterfacesResponse"`
	XMLNS     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	ENIs      []xmlENI `xml:"networkInterfaceSet>item"`
}

type xmlENI struct {
	ID        string       `xml:"networkInterfaceId"`
	PrivateIP string       `xml:"privateIpAddress"`
	Status    string       `xml:"status"`
	IPs       []xmlENIAddr `xml:"privateIpAddressesSet>item"`
}

type xmlENIAddr struct {
	IP      string `xml:"privateIpAddress"`
	Primary bool   `xml:"primary"`
}

type xmlIP struct {
	IP string `xml:"privateIpAddress"`
}

type xmlAssign struct {
	XMLName   xml.Name `xml:"AssignPrivateIpAddressesResponse"`
	XMLNS     string   `xml:"xmlns,attr"`
	RequestID string   `xml:"requestId"`
	Return    bool     `xml:"return"`
	ENI       string   `xml:"networkInterfaceId"`
	Assigned  []xmlIP  `xml:"assignedPrivateIpAddressesSet>item"`
}

type xmlDescribeAddresses struct {
	XMLName   xml.Name     `xml:"DescribeAddressesResponse"`
	XMLNS     string       `xml:"xmlns,attr"`
	RequestID string       `xml:"requestId"`
	Addresses []xmlAddress `xml:"addressesSet>item"`
}

type xmlAddress struct {
	PublicIP      string `xml:"publicIp"`
	AllocationID  string `xml:"allocationId"`
	Domain        string `xml:"domain"`
	AssociationID string `xml:"associationId,omitempty"`
	ENI           string `xml:"networkInterfaceId,omitempty"`
	PrivateIP     string `xml:"privateIpAddress,omitempty"`
}

type xmlAssociate struct {
	XMLName       xml.Name `xml:"AssociateAddressResponse"`
	XMLNS         string   `xml:"xmlns,attr"`
	RequestID     string   `xml:"requestId"`
	Return        bool     `xml:"return"`
	AssociationID string   `xml:"associationId"`
}
