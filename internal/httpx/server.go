package httpx

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"
)

// Server timeouts and limits (TRANSPORT-09).
const (
	// ReadHeaderTimeout cuts off clients that trickle their headers.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request (a 10 MiB body at a
	// modest 200 KiB/s fits).
	ReadTimeout = 60 * time.Second
	// WriteTimeout bounds writing a response, from the end of the request
	// headers.
	WriteTimeout = 120 * time.Second
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes is the limit on the request line plus headers: 64 KiB
	// in total. net/http allows MaxHeaderBytes plus 4096 bytes of slack, so
	// the field is set 4 KiB lower; over the limit → 431.
	MaxHeaderBytes = 64 << 10
)

// NewHTTPServer returns an http.Server with fhirguard's hardening: header,
// read, write and idle timeouts, a 64 KiB header limit, no implicit
// "OPTIONS *" handler, and net/http's own errors (TLS handshakes, bad
// framing) logged through logger at WARN. tlsConf may be nil (plain HTTP).
func NewHTTPServer(h http.Handler, logger *slog.Logger, tlsConf *tls.Config) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:                      h,
		ReadHeaderTimeout:            ReadHeaderTimeout,
		ReadTimeout:                  ReadTimeout,
		WriteTimeout:                 WriteTimeout,
		IdleTimeout:                  IdleTimeout,
		MaxHeaderBytes:               MaxHeaderBytes - 4096,
		DisableGeneralOptionsHandler: true,
		TLSConfig:                    tlsConf,
		ErrorLog:                     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// TLSConfig returns the server TLS configuration following BCP 195
// (RFC 9325): TLS 1.2 minimum, on 1.2 only ECDHE key exchange with AEAD
// ciphers; TLS 1.3 suites are Go's (all AEAD). Renegotiation is never
// supported by Go's server, and TLS compression does not exist in Go.
func TLSConfig(certs []tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: certs,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
}
