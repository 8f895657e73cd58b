package lab

import (
	"crypto/rand"
	"fmt"
	"os"
	"regexp"
)

// DefaultPrefix is the family every lab prefix starts with; Cleanup("")
// removes every namespace whose name starts with it.
const DefaultPrefix = "bt"

var prefixRE = regexp.MustCompile(`^[a-z0-9]{1,24}$`)

// ValidPrefix reports whether p can be used as a lab prefix: 1 to 24
// lower-case letters or digits.
func ValidPrefix(p string) error {
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("lab prefix %q: want 1-24 characters of [a-z0-9]", p)
	}
	return nil
}

// RandomPrefix returns a per-run prefix in the default family, such as
// "bt4821qk": the process id keeps concurrent runs apart, the random letters
// keep successive runs of one process apart.
func RandomPrefix() string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	var b [2]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%d%c%c", DefaultPrefix, os.Getpid()%100000, letters[int(b[0])%26], letters[int(b[1])%26])
}
