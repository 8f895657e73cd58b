// Package pki creates the cluster's secrets: a CA, one certificate per
// node for the peer link (mutual TLS), and the heartbeat key.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/batonha/baton/internal/store"
)

var nodeNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)

// CheckName reports whether n can be a node name: names become file
// names, so the node.name rule, and never a path ("..", "../x").
func CheckName(n string) error {
	if !nodeNameRe.MatchString(n) || strings.Trim(n, ".") == "" {
		return fmt.Errorf("node name %q: use 1 to 63 letters, digits, '.', '_' or '-', as node.name does, and not only dots", n)
	}
	return nil
}

// Files lists what Generate writes, relative to the output directory.
func Files(nodes []string) []string {
	out := []string{"ca.crt", "ca.key", "heartbeat.key"}
	for _, n := range nodes {
		out = append(out, n+".crt", n+".key")
	}
	return out
}

// Generate writes a new CA, a certificate and key per node (DNS name = the
// node name, valid for both TLS client and server use) and a 32-byte
// heartbeat key into dir. Keys are mode 0600, certificates 0644. Existing
// files are never overwritten unless force is set.
func Generate(dir string, nodes []string, validity time.Duration, force bool) error {
	if len(nodes) == 0 {
		return errors.New("no node names given")
	}
	for _, n := range nodes {
		if err := CheckName(n); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if !force {
		for _, f := range Files(nodes) {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return fmt.Errorf("%s exists: refusing to overwrite (use --force)", filepath.Join(dir, f))
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	now := time.Now().Add(-time.Hour)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "baton cluster CA"},
		NotBefore: now, NotAfter: now.Add(time.Hour + validity), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, MaxPathLenZero: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("signing CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER, 0o644); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "ca.key"), caKey); err != nil {
		return err
	}
	for _, n := range nodes {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("generating key for %s: %w", n, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: n}, DNSNames: []string{n},
			NotBefore: now, NotAfter: now.Add(time.Hour + validity), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("signing certificate for %s: %w", n, err)
		}
		if err := writePEM(filepath.Join(dir, n+".crt"), "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		if err := writeKey(filepath.Join(dir, n+".key"), k); err != nil {
			return err
		}
	}
	var hb [32]byte
	if _, err := rand.Read(hb[:]); err != nil {
		return fmt.Errorf("generating heartbeat key: %w", err)
	}
	return store.WriteFileAtomic(filepath.Join(dir, "heartbeat.key"), []byte(hex.EncodeToString(hb[:])+"\n"), 0o600)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

func writeKey(path string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("encoding key %s: %w", path, err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := store.WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
