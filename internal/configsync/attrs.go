package configsync

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// owner is a resolved uid and gid; -1 leaves one unchanged.
type owner struct{ uid, gid int }

// parseMode reads a set's mode (0 for none).
func parseMode(s string) (os.FileMode, error) {
	if s == "" {
		return 0, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m == 0 || m > 0o777 {
		return 0, fmt.Errorf("must be octal permission bits such as 0640 (got %q)", s)
	}
	return os.FileMode(m), nil
}

// parseOwner resolves a set's owner ("user", "user:group", numeric ids);
// nil for none.
func parseOwner(s string) (*owner, error) {
	if s == "" {
		return nil, nil
	}
	u, g, hasGroup := strings.Cut(s, ":")
	o := &owner{uid: -1, gid: -1}
	if u != "" {
		id, err := lookupID(u, func(n string) (string, error) {
			x, err := user.Lookup(n)
			if err != nil {
				return "", err
			}
			if !hasGroup {
				o.gid, _ = strconv.Atoi(x.Gid)
			}
			return x.Uid, nil
		})
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u, err)
		}
		o.uid = id
	}
	if hasGroup && g != "" {
		id, err := lookupID(g, func(n string) (string, error) {
			x, err := user.LookupGroup(n)
			if err != nil {
				return "", err
			}
			return x.Gid, nil
		})
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", g, err)
		}
		o.gid = id
	}
	if o.uid < 0 && o.gid < 0 {
		return nil, fmt.Errorf("must name a user, a group or both (got %q)", s)
	}
	return o, nil
}

func lookupID(name string, lookup func(string) (string, error)) (int, error) {
	if id, err := strconv.Atoi(name); err == nil {
		if id < 0 {
			return 0, errors.New("ids are not negative")
		}
		return id, nil
	}
	s, err := lookup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
}

// attrs are the mode and owner a received file gets on this node.
type attrs struct {
	mode     os.FileMode
	uid, gid int // -1: leave as created
}

// attrsFor decides a received file's mode and owner: the set's configured
// ones, else those of the file it replaces, else (a new file) the peer's
// mode without group and world write, owned by baton. The peer's owner is
// never used: ids differ between nodes and a peer could hand out any.
func (s *set) attrsFor(existing os.FileInfo, remote Meta) attrs {
	a := attrs{mode: os.FileMode(remote.Mode) & 0o755, uid: -1, gid: -1}
	if existing != nil {
		m := metaOf(existing)
		a = attrs{mode: os.FileMode(m.Mode), uid: m.UID, gid: m.GID}
	}
	if s.mode != 0 {
		a.mode = s.mode
	}
	if o := s.owner; o != nil {
		if o.uid >= 0 {
			a.uid = o.uid
		}
		if o.gid >= 0 {
			a.gid = o.gid
		}
	}
	return a
}

// applyAttrs gives the file f (whose info is fi) the mode and owner a,
// changing only what differs. A chown the system denies (EPERM: not root,
// or a sandbox without CAP_CHOWN) is a warning, not a failure.
func (e *Engine) applyAttrs(name string, fi os.FileInfo, a attrs, chmod func(os.FileMode) error, chown func(uid, gid int) error) error {
	m := metaOf(fi)
	if os.FileMode(m.Mode) != a.mode {
		if err := chmod(a.mode); err != nil {
			return fmt.Errorf("setting mode of %s to %#o: %w", name, a.mode, err)
		}
	}
	uid, gid := a.uid, a.gid
	if uid == m.UID {
		uid = -1
	}
	if gid == m.GID {
		gid = -1
	}
	if uid < 0 && gid < 0 {
		return nil
	}
	if err := chown(uid, gid); err != nil {
		if errors.Is(err, syscall.EPERM) {
			e.log.Warn("config sync could not set a file's owner; it keeps baton's", "file", name, "uid", a.uid, "gid", a.gid, "err", err)
			return nil
		}
		return fmt.Errorf("setting owner of %s to %d:%d: %w", name, a.uid, a.gid, err)
	}
	return nil
}
