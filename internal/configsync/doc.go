// Package configsync keeps chosen configuration files identical on the two
// appliances, except for what is per node, and never loses or half-applies
// an edit.
//
// Files are grouped in sets (a directory, glob patterns, exclusions, a
// validate and an apply command). Each file carries a version vector; an
// edit on either node propagates to the other over the authenticated peer
// link, immediately on a file-system notification (debounced) and at a
// periodic full comparison. Concurrent edits are resolved the same way on
// both nodes (see version.go) and the losing content is kept beside the
// file. Per-node lines stay local and substitution pairs (this node's
// address ↔ the peer's) are swapped as a file crosses, exactly reversibly
// (see transform.go). A received file is written to a temporary file,
// validated, renamed into place with the previous version kept as a
// backup, and applied; a failed apply restores the previous file.
package configsync
