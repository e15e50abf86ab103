package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/httpx"
)

// selfSignedLifetime is the validity of a generated certificate.
const selfSignedLifetime = 30 * 24 * time.Hour

// tlsConfig builds the server TLS configuration (TLS ≥ 1.2, BCP 195
// suites) from a certificate/key pair or a fresh self-signed certificate;
// nil when TLS is off.
func tlsConfig(c config.TLS, addr string, clk clock.Clock) (*tls.Config, *x509.Certificate, error) {
	switch {
	case c.SelfSigned:
		cert, leaf, err := selfSigned(hostOf(addr), clk.Now())
		if err != nil {
			return nil, nil, fmt.Errorf("tls.self_signed: %w", err)
		}
		return httpx.TLSConfig([]tls.Certificate{cert}), leaf, nil
	case c.Cert != "":
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("tls.cert/tls.key: cannot load the certificate pair: %w", err)
		}
		return httpx.TLSConfig([]tls.Certificate{cert}), nil, nil
	default:
		return nil, nil, nil
	}
}

// selfSigned makes an in-memory ECDSA P-256 certificate for localhost, the
// loopback addresses and host (when it is a name or an IP), valid from an
// hour before now for 30 days.
func selfSigned(host string, now time.Time) (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "fhirguard self-signed"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.IsUnspecified() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
		}
	} else if host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}
