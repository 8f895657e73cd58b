package configsync

import (
	"bytes"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	h := fileHeader{Key: Key{"nft", "a.nft"}, Meta: Meta{VV: VV{"nva-a": 3}, Hash: "abc", Mode: 0o640}}
	p, err := encodeFrame(h, []byte("table inet f {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got fileHeader
	body, err := decodeFrame(p, &got)
	if err != nil || string(body) != "table inet f {}\n" || got.Key != h.Key || got.VV["nva-a"] != 3 || got.Mode != 0o640 {
		t.Fatalf("got %+v %q %v", got, body, err)
	}
	for _, bad := range [][]byte{nil, {0, 0}, {0, 0, 0, 9, '{'}, {0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 1, 'x'}} {
		if _, err := decodeFrame(bad, &got); err == nil {
			t.Errorf("decodeFrame(%q) must fail", bad)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, hdr := range []any{
		fileHeader{Key: Key{"s", "p"}, Meta: Meta{VV: VV{"a": 1}, Hash: "h"}},
		index{Entries: []indexEntry{{Key: Key{"s", "p"}, Meta: Meta{VV: VV{"b": 2}, Deleted: true}}}},
		want{Keys: []Key{{"s", "p"}}, Index: true},
		ack{Key: Key{"s", "p"}, OK: true},
		hello{Node: "nva-a", Fingerprint: "f"},
	} {
		p, _ := encodeFrame(hdr, []byte("body"))
		f.Add(p)
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		var h fileHeader
		body, err := decodeFrame(p, &h)
		if err != nil {
			return
		}
		if !bytes.HasSuffix(p, body) {
			t.Fatal("body must be the frame's tail")
		}
		var ix index
		_, _ = decodeFrame(p, &ix)
		var a ack
		_, _ = decodeFrame(p, &a)
	})
}
