package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseRoleChange(t *testing.T) {
	line := `{"time":"2026-11-22T10:00:01.123456789+01:00","level":"INFO","msg":"role changed","component":"role","from":"STANDBY","to":"ACTIVE","reason":"peer lost","term":7}`
	rc, ok := ParseRoleChange([]byte(line))
	if !ok {
		t.Fatal("not parsed")
	}
	want := time.Date(2026, 11, 22, 9, 0, 1, 123456789, time.UTC)
	if !rc.Time.Equal(want) || rc.From != "STANDBY" || rc.To != "ACTIVE" || rc.Reason != "peer lost" || rc.Term != 7 {
		t.Errorf("got %+v", rc)
	}
	for _, bad := range []string{
		``,
		`not json "role changed"`,
		`{"time":"2026-11-22T10:00:01Z","msg":"role change requested","to":"ACTIVE"}`,
		`{"time":"yesterday","msg":"role changed","to":"ACTIVE"}`,
		`{"time":"2026-11-22T10:00:01Z","msg":"role changed"}`,
		`time=2026-11-22T10:00:01Z level=INFO msg="role changed" to=ACTIVE`,
	} {
		if rc, ok := ParseRoleChange([]byte(bad)); ok {
			t.Errorf("ParseRoleChange(%q) = %+v, want not ok", bad, rc)
		}
	}
	rc, ok = ParseRoleChange([]byte(`{"time":"2026-11-22T10:00:01Z","msg":"role changed","to":"STANDBY","term":"12"}`))
	if !ok || rc.Term != 12 {
		t.Errorf("quoted term: %+v %v", rc, ok)
	}
}

func TestLogFollower(t *testing.T) {
	path := filepath.Join(t.TempDir(), "baton.log")
	f := NewLogFollower(path)
	if rcs, err := f.Next(); err != nil || len(rcs) != 0 {
		t.Fatalf("missing file: %v %v", rcs, err)
	}
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write := func(s string) {
		if _, err := w.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"time":"2026-11-22T10:00:01Z","msg":"starting"}` + "\n")
	write(`{"time":"2026-11-22T10:00:02Z","msg":"role changed","from":"INIT","to":"STANDBY","term":1}` + "\n")
	write(`{"time":"2026-11-22T10:00:03Z","msg":"role chan`) // half a line
	rcs, err := f.Next()
	if err != nil || len(rcs) != 1 || rcs[0].To != "STANDBY" {
		t.Fatalf("first read: %+v %v", rcs, err)
	}
	write(`ged","from":"STANDBY","to":"ACTIVE","term":2}` + "\n")
	rcs, err = f.Next()
	if err != nil || len(rcs) != 1 || rcs[0].To != "ACTIVE" || rcs[0].Term != 2 {
		t.Fatalf("second read: %+v %v", rcs, err)
	}
	if err := f.SkipToEnd(); err != nil {
		t.Fatal(err)
	}
	rcs, err = f.Next()
	if err != nil || len(rcs) != 0 {
		t.Fatalf("after SkipToEnd: %+v %v", rcs, err)
	}
	all, err := ReadRoleChanges(strings.NewReader(mustRead(t, path)))
	if err != nil || len(all) != 2 {
		t.Errorf("ReadRoleChanges = %+v, %v; want 2", all, err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzParseRoleChange(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-22T10:00:01.5Z","msg":"role changed","from":"STANDBY","to":"ACTIVE","reason":"peer lost","term":7}`))
	f.Add([]byte(`{"time":"2026-11-22T10:00:01Z","msg":"role changed","to":"FAULT","term":"3"}`))
	f.Add([]byte(`{"msg":"role changed","term":18446744073709551616}`))
	f.Add([]byte(`garbage "role changed"`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rc, ok := ParseRoleChange(line)
		if ok && (rc.To == "" || rc.Time.IsZero()) {
			t.Errorf("accepted a record without to/time: %+v", rc)
		}
	})
}
