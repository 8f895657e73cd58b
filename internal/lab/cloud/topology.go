package cloud

import "github.com/batonha/baton/internal/lab"

// Addresses of the cloud topology built by NewTopology. The appliances
// keep the pair topology's front and hb addresses (lab.AFront, lab.AHB,
// ...) so lab.PairNodeConfig describes them unchanged.
//
//	client ─ edge ─┐              ┌─ srv ─ server
//	               fabric (VPC router)
//	               └──── front ───┤
//	               nva-a  nva-b ──┘   (one arm each, on front)
//	cloud ─ mgmt ─ nva-a, nva-b       (emulated control plane)
//	nva-a ══ hb ══ nva-b
const (
	ClientAddr   = "10.100.3.10" // client on edge
	FabricEdge   = "10.100.3.1"  // fabric on edge: the client's default gateway
	FabricFront  = "10.100.1.1"  // fabric on front: the appliances' default gateway
	FabricServer = "10.100.2.1"  // fabric on srv: the server's default gateway
	ServerAddr   = "10.100.2.20" // server on srv
	CloudAddr    = "10.100.8.1"  // emulated control plane on mgmt
	AMgmt        = "10.100.8.11" // nva-a on mgmt
	BMgmt        = "10.100.8.12" // nva-b on mgmt
	CloudPort    = 8080

	ClientNet = "10.100.3.0/24"
	ServerNet = "10.100.2.0/24"
	MgmtNet   = "10.100.8.0/24"

	IfMgmt = "mgmt0" // the appliances' management interface
)

// The emulated AWS resources of the scenario: each appliance's ENI, the
// route tables of the client and server subnets, and an ENI of some other
// appliance that baton must never take routes from.
const (
	ENIA      = "eni-000000000000000a1"
	ENIB      = "eni-000000000000000b1"
	ENIOther  = "eni-000000000000000c1"
	RTBClient = "rtb-000000000000000e1" // associated with edge (client subnet)
	RTBServer = "rtb-000000000000000f1" // associated with srv (server subnet)
	VPC       = "vpc-00000000000000001"
)

// The emulated Azure resources of the scenario.
const (
	Subscription  = "00000000-0000-4000-8000-000000000001"
	ResourceGroup = "rg-lab"
	Location      = "westeurope"
)

// Routes of the scenario that no appliance of the pair owns: baton must
// leave them alone.
const (
	UnownedPrefix    = "198.51.100.0/24" // points at ENIOther / 10.100.1.99
	OtherApplianceIP = "10.100.1.99"
)

// ENI returns the ENI of appliance i (0 = nva-a, 1 = nva-b).
func ENI(i int) string { return [2]string{ENIA, ENIB}[i] }

// AzureClientTable and AzureServerTable are the resource IDs of the
// scenario's Azure route tables.
var (
	AzureClientTable = TableID(Subscription, ResourceGroup, "rt-client")
	AzureServerTable = TableID(Subscription, ResourceGroup, "rt-server")
)

// SeedAWS fills s with the AWS scenario: both appliances' ENIs, and the
// client and server subnets' route tables sending the other subnet through
// appliance active (0 = nva-a), plus an unowned route to another appliance.
func SeedAWS(s *Server, active int) {
	f := s.EC2()
	f.AddENI(ENIA, lab.AFront)
	f.AddENI(ENIB, lab.BFront)
	f.AddENI(ENIOther, OtherApplianceIP)
	f.AddTable(RTBClient, VPC, map[string]string{"baton": "lab"}, map[string]string{
		ServerNet: ENI(active), UnownedPrefix: ENIOther, "10.100.0.0/16": "local",
	})
	f.AddTable(RTBServer, VPC, map[string]string{"baton": "lab"}, map[string]string{
		ClientNet: ENI(active), "10.100.0.0/16": "local",
	})
}

// SeedAzure fills s with the Azure scenario: the same two route tables as
// UDRs whose VirtualAppliance next hop is appliance active's front IP.
func SeedAzure(s *Server, active int) error {
	hop := lab.FrontAddr(active)
	if err := s.AddAzureTable(AzureClientTable, Location, map[string]string{"baton": "lab"},
		AzureRoute{Name: "to-server", Prefix: ServerNet, NextHopType: "VirtualAppliance", NextHopIP: hop},
		AzureRoute{Name: "to-other", Prefix: UnownedPrefix, NextHopType: "VirtualAppliance", NextHopIP: OtherApplianceIP},
	); err != nil {
		return err
	}
	return s.AddAzureTable(AzureServerTable, Location, map[string]string{"baton": "lab"},
		AzureRoute{Name: "to-client", Prefix: ClientNet, NextHopType: "VirtualAppliance", NextHopIP: hop},
	)
}
