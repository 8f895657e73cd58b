package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// RoleChange is one `msg="role changed"` record of the baton daemon's JSON
// log.
type RoleChange struct {
	Time     time.Time
	From, To string
	Reason   string
	Term     uint64
}

// ParseRoleChange decodes one line of a baton JSON log. It reports false for
// lines that are not role changes or are malformed.
func ParseRoleChange(line []byte) (RoleChange, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' || !bytes.Contains(line, []byte(`"role changed"`)) {
		return RoleChange{}, false
	}
	var rec struct {
		Time   string          `json:"time"`
		Msg    string          `json:"msg"`
		From   string          `json:"from"`
		To     string          `json:"to"`
		Reason string          `json:"reason"`
		Term   json.RawMessage `json:"term"`
	}
	if err := json.Unmarshal(line, &rec); err != nil || rec.Msg != "role changed" || rec.To == "" {
		return RoleChange{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, rec.Time)
	if err != nil || t.IsZero() {
		return RoleChange{}, false
	}
	rc := RoleChange{Time: t, From: rec.From, To: rec.To, Reason: rec.Reason}
	if len(rec.Term) > 0 {
		// slog writes uint64 as a number; accept a quoted number too.
		s := string(bytes.Trim(rec.Term, `"`))
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			rc.Term = n
		}
	}
	return rc, true
}

// LogFollower reads the role changes appended to a baton JSON log file,
// remembering how far it has read. It tolerates a file that does not exist
// yet and a last line still being written.
type LogFollower struct {
	path    string
	off     int64
	partial []byte
}

// NewLogFollower follows path from its beginning.
func NewLogFollower(path string) *LogFollower { return &LogFollower{path: path} }

// SkipToEnd makes the follower ignore everything written so far.
func (f *LogFollower) SkipToEnd() error {
	st, err := os.Stat(f.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading size of %s: %w", f.path, err)
	}
	f.off, f.partial = st.Size(), nil
	return nil
}

// Next returns the role changes completed since the previous call.
func (f *LogFollower) Next() ([]RoleChange, error) {
	file, err := os.Open(f.path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening log %s: %w", f.path, err)
	}
	defer file.Close()
	if _, err := file.Seek(f.off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seeking in log %s: %w", f.path, err)
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("reading log %s: %w", f.path, err)
	}
	f.off += int64(len(b))
	buf := append(f.partial, b...)
	var out []RoleChange
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if rc, ok := ParseRoleChange(buf[:i]); ok {
			out = append(out, rc)
		}
		buf = buf[i+1:]
	}
	f.partial = append([]byte(nil), buf...)
	return out, nil
}

// ReadRoleChanges returns every role change in a baton JSON log.
func ReadRoleChanges(r io.Reader) ([]RoleChange, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading log: %w", err)
	}
	var out []RoleChange
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rc, ok := ParseRoleChange(line); ok {
			out = append(out, rc)
		}
	}
	return out, nil
}
