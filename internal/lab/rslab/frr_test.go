package rslab

import "testing"

func FuzzParseFRRNeighbors(f *testing.F) {
	f.Add([]byte(`{"10.77.0.11":{"remoteAs":65001,"bgpState":"Established"},"10.77.0.12":{"bgpState":"Active"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"x":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseFRRNeighbors(b)
		if err != nil && m != nil {
			t.Fatal("result with an error")
		}
	})
}

func TestParseFRRNeighbors(t *testing.T) {
	m, err := parseFRRNeighbors([]byte(`{"10.77.0.11":{"remoteAs":65001,"bgpState":"Established"},"10.77.0.12":{"bgpState":"Active"},"junk":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || !m["10.77.0.11"] || m["10.77.0.12"] {
		t.Fatalf("got %v", m)
	}
}
