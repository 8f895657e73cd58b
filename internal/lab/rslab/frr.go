package rslab

import (
	"encoding/json"
	"fmt"
)

// parseFRRNeighbors reads `show bgp neighbors json`: neighbor address →
// session established.
func parseFRRNeighbors(b []byte) (map[string]bool, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parsing FRR neighbors: %w", err)
	}
	out := map[string]bool{}
	for addr, v := range raw {
		var n struct {
			BGPState string `json:"bgpState"`
		}
		if err := json.Unmarshal(v, &n); err != nil {
			continue // not a neighbor object
		}
		if n.BGPState == "" {
			continue
		}
		out[addr] = n.BGPState == "Established"
	}
	return out, nil
}
