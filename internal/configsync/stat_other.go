//go:build !linux

package configsync

import "os"

// statKey identifies a file's state cheaply: if it is unchanged the
// content need not be read again.
type statKey struct {
	Size  int64 `json:"size"`
	Mtime int64 `json:"mtime"`
}

func statOf(fi os.FileInfo) statKey { return statKey{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()} }

// metaOf fills the mode of a version from a file's info.
func metaOf(fi os.FileInfo) Meta {
	return Meta{Size: fi.Size(), Mode: uint32(fi.Mode() & os.ModePerm), UID: os.Getuid(), GID: os.Getgid()}
}
