package lab

// Addresses of the standard pair topology built by NewPair.
const (
	ClientFront = "10.100.1.10" // client on segment front
	AFront      = "10.100.1.11" // nva-a on front (eth0)
	BFront      = "10.100.1.12" // nva-b on front (eth0)
	ABack       = "10.100.2.11" // nva-a on back (eth1)
	BBack       = "10.100.2.12" // nva-b on back (eth1)
	ServerBack  = "10.100.2.20" // server on segment back
	AHB         = "10.100.9.1"  // nva-a on the direct link hb (hb0)
	BHB         = "10.100.9.2"  // nva-b on the direct link hb (hb0)

	FrontNet = "10.100.1.0/24"
	BackNet  = "10.100.2.0/24"
	HBNet    = "10.100.9.0/30"
)

// Appliance interface names inside nva-a and nva-b.
const (
	IfFront = "eth0"
	IfBack  = "eth1"
	IfHB    = "hb0"
)

// FrontAddr returns the front address of appliance i (0 = nva-a, 1 = nva-b).
func FrontAddr(i int) string { return [2]string{AFront, BFront}[i] }

// BackAddr returns the back address of appliance i (0 = nva-a, 1 = nva-b).
func BackAddr(i int) string { return [2]string{ABack, BBack}[i] }

// HBAddr returns the hb address of appliance i (0 = nva-a, 1 = nva-b).
func HBAddr(i int) string { return [2]string{AHB, BHB}[i] }
