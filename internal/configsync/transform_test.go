package configsync

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// pairFor returns the transforms of nva-a and nva-b for the same pairs.
func pairFor(t *testing.T, subst map[string]string, local []string) (a, b *transform) {
	t.Helper()
	a, err := newTransform("nva-a", "nva-b", subst, local)
	if err != nil {
		t.Fatal(err)
	}
	rev := map[string]string{}
	for k, v := range subst {
		rev[v] = k
	}
	b, err = newTransform("nva-b", "nva-a", rev, local)
	if err != nil {
		t.Fatal(err)
	}
	if a.fingerprint() != b.fingerprint() {
		t.Fatalf("fingerprints differ for the same pairs: %s %s", a.fingerprint(), b.fingerprint())
	}
	return a, b
}

func TestSubstitutionExamples(t *testing.T) {
	a, b := pairFor(t, map[string]string{"10.0.1.4": "10.0.1.5", "nva-a.example": "nva-b.example"}, nil)
	in := "server s1 10.0.1.4:80 check\nbind 10.0.1.5\nhost 10.0.1.45 110.0.1.4 10.0.1.4.5\nname nva-a.example.\nnva-a.example-old\n"
	canon, err := a.encode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(canon) != in {
		t.Fatalf("the lower-named node's canonical form is its local form, got %q", canon)
	}
	onB, err := b.decode(canon, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "server s1 10.0.1.5:80 check\nbind 10.0.1.4\nhost 10.0.1.45 110.0.1.4 10.0.1.4.5\nname nva-b.example.\nnva-a.example-old\n"
	if string(onB) != want {
		t.Fatalf("on nva-b:\n%s\nwant:\n%s", onB, want)
	}
	back, err := b.encode(onB)
	if err != nil || !bytes.Equal(back, canon) {
		t.Fatalf("nva-b's canonical form %q (%v), want %q", back, err, canon)
	}
}

func TestLocalLinesStayLocal(t *testing.T) {
	a, b := pairFor(t, map[string]string{"10.0.1.4": "10.0.1.5"}, []string{`^define SELF_`, `^\s*hostname `})
	onA := "define SELF_ADDR = 10.0.1.4\ntable inet f {\n  hostname a\n  ip saddr 10.0.1.5 accept\n}\n"
	curB := "define SELF_ADDR = 10.0.1.5\ntable inet f {\n  hostname b\n}\n"
	canon, err := a.encode([]byte(onA))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(canon), "SELF_ADDR") || strings.Contains(string(canon), "hostname") {
		t.Fatalf("local lines leaked into the canonical form: %q", canon)
	}
	got, err := b.decode(canon, []byte(curB))
	if err != nil {
		t.Fatal(err)
	}
	want := "define SELF_ADDR = 10.0.1.5\ntable inet f {\n  hostname b\n  ip saddr 10.0.1.4 accept\n}\n"
	if string(got) != want {
		t.Fatalf("on nva-b:\n%s\nwant:\n%s", got, want)
	}
	// A→B→A is exact.
	c2, err := b.encode(got)
	if err != nil {
		t.Fatal(err)
	}
	back, err := a.decode(c2, []byte(onA))
	if err != nil || string(back) != onA {
		t.Fatalf("round trip gave %q (%v), want %q", back, err, onA)
	}
	// A receiver with no local lines yet drops the placeholders; one with
	// more keeps the extra ones after the last placeholder.
	got, _ = b.decode(canon, nil)
	if string(got) != "table inet f {\n  ip saddr 10.0.1.4 accept\n}\n" {
		t.Fatalf("no local lines: %q", got)
	}
	got, _ = b.decode([]byte("x\n"), []byte("hostname b\n"))
	if string(got) != "x\nhostname b\n" {
		t.Fatalf("extra local line: %q", got)
	}
}

func TestSubstitutionRefusesAmbiguous(t *testing.T) {
	_, b := pairFor(t, map[string]string{"x": "y"}, nil)
	// Adjacent values are not whole words, so this one is fine ...
	if _, err := b.encode([]byte("xy x-y x y\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := newSwapper("a", "b", map[string]string{"1": "2", "3": "1"}); err == nil {
		t.Fatal("a value in two pairs must be refused")
	}
	if _, err := (&transform{swap: &swapper{}}).encode([]byte("a" + placeholder)); err == nil {
		t.Fatal("content holding the placeholder must be refused")
	}
}

// TestSubstitutionRoundTripProperty: for random content built from the
// pairs' values, separators and noise, whenever the transforms accept a
// file, A→B→A and B→A→B are byte-exact and the canonical forms agree.
func TestSubstitutionRoundTripProperty(t *testing.T) {
	subst := map[string]string{"10.0.1.4": "10.0.1.5", "fd00::4": "fd00::5", "nva-a": "nva-b", "eth0": "eth1"}
	a, b := pairFor(t, subst, []string{`^#local`})
	atoms := []string{"10.0.1.4", "10.0.1.5", "fd00::4", "fd00::5", "nva-a", "nva-b", "eth0", "eth1",
		" ", "\n", ":", ".", "/24", "-", "_", "x", "1", "#local ", "\t", "{", "}", ";", "::", "\r\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	refused := 0
	const runs = 3000
	for range runs {
		var sb strings.Builder
		for range rng.IntN(40) {
			sb.WriteString(atoms[rng.IntN(len(atoms))])
		}
		x := []byte(sb.String())
		for _, dir := range []struct{ from, to *transform }{{a, b}, {b, a}} {
			c1, err := dir.from.encode(x)
			if err != nil {
				if !errors.Is(err, ErrNotReversible) {
					t.Fatalf("encode %q: %v", x, err)
				}
				refused++
				continue
			}
			y, err := dir.to.decode(c1, x)
			if err != nil {
				refused++
				continue
			}
			c2, err := dir.to.encode(y)
			if err != nil {
				t.Fatalf("%q decoded to %q which does not encode back: %v", x, y, err)
			}
			if !bytes.Equal(c1, c2) {
				t.Fatalf("canonical forms differ for %q: %q vs %q", x, c1, c2)
			}
			back, err := dir.from.decode(c2, x)
			if err != nil || !bytes.Equal(back, x) {
				t.Fatalf("round trip of %q gave %q (%v)", x, back, err)
			}
		}
	}
	if refused > runs/10 {
		t.Fatalf("%d of %d random files refused: the word rule is too strict", refused, 2*runs)
	}
	// Files made of whole words separated by blanks are never refused.
	for range 500 {
		var words []string
		for range rng.IntN(20) {
			words = append(words, atoms[rng.IntN(8)])
		}
		x := []byte(strings.Join(words, " ") + "\n")
		c, err := b.encode(x)
		if err != nil {
			t.Fatalf("%q refused: %v", x, err)
		}
		if back, _ := b.decode(c, x); !bytes.Equal(back, x) {
			t.Fatalf("round trip of %q gave %q", x, back)
		}
	}
}
