package configsync

import (
	"os"
	"syscall"
)

// statKey identifies a file's state cheaply: if it is unchanged the
// content need not be read again.
type statKey struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"`
	Ctime int64  `json:"ctime"`
	Ino   uint64 `json:"ino"`
}

func statOf(fi os.FileInfo) statKey {
	k := statKey{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.Ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
		k.Ino = st.Ino
	}
	return k
}

// metaOf fills the mode and owner of a version from a file's info.
func metaOf(fi os.FileInfo) Meta {
	m := Meta{Size: fi.Size(), Mode: uint32(fi.Mode() & os.ModePerm)}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		m.UID, m.GID = int(st.Uid), int(st.Gid)
	}
	return m
}
