package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenCreatesPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "state")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("state dir mode = %v, want 0700", got)
	}
	if s.Path() != filepath.Join(dir, FileName) {
		t.Errorf("Path() = %q", s.Path())
	}
}

func TestOpenRejectsFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
	if _, err := Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestLoadMissing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, ok, err := s.Load()
	if err != nil || ok {
		t.Fatalf("Load on empty dir = %+v, %v, %v; want zero, false, nil", st, ok, err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := State{
		Role:  "ACTIVE",
		Term:  42,
		Since: time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC),
		Node:  "nva-a",
		Extra: map[string]json.RawMessage{"bgp": json.RawMessage(`{"asn":65001}`)},
	}
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("state file mode = %v, want 0600", got)
	}
	// A second Store on the same dir (a restarted daemon) sees it.
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := s2.Load()
	if err != nil || !ok {
		t.Fatalf("Load = %v, %v", ok, err)
	}
	if got.Role != want.Role || got.Term != want.Term || !got.Since.Equal(want.Since) || got.Node != want.Node {
		t.Errorf("Load = %+v, want %+v", got, want)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, got.Extra["bgp"]); err != nil || compact.String() != `{"asn":65001}` {
		t.Errorf("Extra[bgp] = %s", got.Extra["bgp"])
	}
	// Overwrite.
	want.Term = 43
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s2.Load(); got.Term != 43 {
		t.Errorf("after second Save, Term = %d, want 43", got.Term)
	}
	assertNoTemp(t, dir)
}

func TestLoadCorrupt(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":   `{"version":1,"role":"ACT`,
		"garbage":     "\x00\x01not json",
		"empty":       "",
		"no version":  `{"role":"ACTIVE","term":1}`,
		"newer":       `{"version":99,"role":"ACTIVE"}`,
		"trailing":    `{"version":1,"role":"ACTIVE"} {}`,
		"wrong types": `{"version":1,"term":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.Path(), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, ok, err := s.Load()
			if err == nil || ok {
				t.Fatalf("Load of corrupt file = %v, %v; want an error", ok, err)
			}
			if !strings.Contains(err.Error(), s.Path()) {
				t.Errorf("error %q does not name the file %s", err, s.Path())
			}
		})
	}
}

func TestSaveEncodeFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(State{Role: "STANDBY", Term: 7}); err != nil {
		t.Fatal(err)
	}
	bad := State{Role: "ACTIVE", Term: 8, Extra: map[string]json.RawMessage{"x": json.RawMessage("{not json")}}
	if err := s.Save(bad); err == nil {
		t.Fatal("Save with invalid Extra succeeded")
	}
	got, ok, err := s.Load()
	if err != nil || !ok || got.Term != 7 || got.Role != "STANDBY" {
		t.Fatalf("after failed Save, Load = %+v, %v, %v; want the old state", got, ok, err)
	}
	assertNoTemp(t, dir)
}

func TestWriteFileAtomicFailuresKeepOldFile(t *testing.T) {
	boom := errors.New("injected failure")
	cases := map[string]func(*fileOps){
		"create": func(o *fileOps) {
			o.createTemp = func(string, string) (*os.File, error) { return nil, boom }
		},
		"partial write": func(o *fileOps) {
			o.write = func(f *os.File, data []byte) (int, error) {
				n, _ := f.Write(data[:len(data)/2])
				return n, boom
			}
		},
		"short write": func(o *fileOps) {
			o.write = func(f *os.File, data []byte) (int, error) { return f.Write(data[:1]) }
		},
		"sync":   func(o *fileOps) { o.sync = func(*os.File) error { return boom } },
		"rename": func(o *fileOps) { o.rename = func(string, string) error { return boom } },
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if err := WriteFileAtomic(path, []byte("old content"), 0o600); err != nil {
				t.Fatal(err)
			}
			ops := osOps()
			breakIt(&ops)
			err := ops.writeFileAtomic(path, []byte("new content that is longer"), 0o600)
			if err == nil {
				t.Fatal("write with an injected failure succeeded")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			got, rerr := os.ReadFile(path)
			if rerr != nil || string(got) != "old content" {
				t.Fatalf("after failed write, file = %q, %v; want old content", got, rerr)
			}
			assertNoTemp(t, dir)
		})
	}
}

func TestWriteFileAtomicDirSyncFailureReported(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	ops := osOps()
	ops.syncDir = func(string) error { return errors.New("injected") }
	if err := ops.writeFileAtomic(path, []byte("x"), 0o644); err == nil {
		t.Fatal("directory sync failure not reported")
	}
	// The rename happened: the new content is there and no temp is left.
	if got, _ := os.ReadFile(path); string(got) != "x" {
		t.Errorf("file = %q, want x", got)
	}
	assertNoTemp(t, dir)
}

func TestWriteFileAtomicMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFileAtomic(path, []byte("a"), 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
	}
	if err := WriteFileAtomic(filepath.Join(t.TempDir(), "missing", "f"), []byte("a"), 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(State{Role: "ACTIVE", Term: 3, Node: "a", Since: time.Unix(1, 0).UTC()})
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"extra":{"k":[1,2]}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same thing.
		enc, err := Encode(st)
		if err != nil {
			t.Fatalf("re-encoding decoded state: %v", err)
		}
		st2, err := Decode(enc)
		if err != nil {
			t.Fatalf("decoding re-encoded state: %v", err)
		}
		if st2.Role != st.Role || st2.Term != st.Term || st2.Node != st.Node || !st2.Since.Equal(st.Since) || len(st2.Extra) != len(st.Extra) {
			t.Fatalf("round trip changed state: %+v -> %+v", st, st2)
		}
	})
}
