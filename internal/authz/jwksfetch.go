package authz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fhirguard/fhirguard/internal/clock"
)

// jwks_uri fetching (AUTHN-09): only https URLs on the allowlist, with a
// timeout, no redirects and a size limit; sets are cached and refetched
// when a kid is unknown, at most once per jwksMinRefetch.
const (
	jwksTTL        = 5 * time.Minute
	jwksMinRefetch = 10 * time.Second
	jwksMaxBytes   = 64 << 10
	jwksTimeout    = 5 * time.Second
)

type jwksCache struct {
	client *http.Client
	clk    clock.Clock
	hosts  []string

	mu      sync.Mutex
	entries map[string]*jwksEntry
}

type jwksEntry struct {
	mu      sync.Mutex // one fetch per URI at a time
	set     *jose.JSONWebKeySet
	fetched time.Time
	tried   time.Time
}

func newJWKSCache(c *http.Client, clk clock.Clock, hosts []string) *jwksCache {
	if c == nil {
		c = &http.Client{Timeout: jwksTimeout}
	}
	cc := *c
	if cc.Timeout == 0 || cc.Timeout > jwksTimeout {
		cc.Timeout = jwksTimeout
	}
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") }
	return &jwksCache{client: &cc, clk: clk, hosts: hosts, entries: map[string]*jwksEntry{}}
}

// get returns the key set of uri, fetching it when not cached, stale, or
// lacking kid (rate-limited).
func (c *jwksCache) get(ctx context.Context, uri, kid string) (*jose.JSONWebKeySet, error) {
	if err := checkJWKSURI(uri, c.hosts); err != nil {
		return nil, err
	}
	c.mu.Lock()
	e := c.entries[uri]
	if e == nil {
		e = &jwksEntry{}
		c.entries[uri] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.clk.Now()
	fresh := e.set != nil && now.Sub(e.fetched) < jwksTTL
	if fresh && len(e.set.Key(kid)) > 0 {
		return e.set, nil
	}
	if e.set != nil && now.Sub(e.tried) < jwksMinRefetch {
		return e.set, nil // unknown kid: answered from the cache until the refetch limit passes
	}
	e.tried = now
	set, err := c.fetch(ctx, uri)
	if err != nil {
		if fresh {
			return e.set, nil
		}
		return nil, err
	}
	e.set, e.fetched = set, now
	return set, nil
}

func (c *jwksCache) fetch(ctx context.Context, uri string) (*jose.JSONWebKeySet, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "https" || !slices.Contains(c.hosts, strings.ToLower(u.Host)) && !slices.Contains(c.hosts, strings.ToLower(u.Hostname())) {
		return nil, errors.New("jwks_uri not allowed")
	}
	ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks_uri: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks_uri: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read jwks_uri: %w", err)
	}
	if len(b) > jwksMaxBytes {
		return nil, errors.New("jwks_uri document is too large")
	}
	set, err := parseClientJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri document: %w", err)
	}
	return set, nil
}
