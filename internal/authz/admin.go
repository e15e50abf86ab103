package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/store"
)

// Admin holds the operations shared by the admin CLI and the HTTP
// endpoints: registering clients, adding users, EHR launch values and
// initial access tokens.
type Admin struct {
	Store     Store
	Resources ResourceReader
	Clock     clock.Clock
	// Argon2 are the cost parameters of new password hashes (zero =
	// DefaultArgon2).
	Argon2 Argon2Params
	// RegistrationEndpoint is the registration endpoint URL. When set,
	// Register also issues an RFC 7592 registration access token and
	// registration_client_uri (the client's configuration endpoint); the
	// server sets it, the offline CLI (which knows no URL) does not.
	RegistrationEndpoint string
}

// Lifetimes of the admin-issued values.
const (
	LaunchLifetime        = 5 * time.Minute
	DefaultIATLifetime    = 24 * time.Hour
	clientSecretBytes     = 32
	generatedClientIDSize = 16
)

// Registration is the RFC 7591 §3.2.1 response: the registered metadata
// plus the issued credentials. ClientSecret is shown once and never stored
// in clear.
type Registration struct {
	Metadata
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	// RFC 7592 client configuration: the bearer token (shown once) and
	// the URL that reads the registration.
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`
}

// Register validates an RFC 7591 document and stores the client. A
// client_secret_basic client gets a fresh secret (in the result only).
func (a *Admin) Register(ctx context.Context, doc []byte, pol RegistrationPolicy) (*Registration, error) {
	m, err := ParseMetadata(doc, pol)
	if err != nil {
		return nil, err
	}
	if m.ClientID == "" {
		m.ClientID = randomValue(generatedClientIDSize)
	}
	now := a.Clock.Now()
	reg := &Registration{Metadata: *m, ClientIDIssuedAt: now.Unix()}
	rec := store.Client{ID: m.ClientID, CreatedAt: now, UpdatedAt: now}
	if m.TokenEndpointAuthMethod == AuthSecretBasic {
		reg.ClientSecret = randomValue(clientSecretBytes)
		zero := int64(0)
		reg.ClientSecretExpiresAt = &zero
		rec.SecretHash = hashSecret(reg.ClientSecret)
	}
	stored := *m
	stored.ClientID = ""
	if rec.Metadata, err = json.Marshal(stored); err != nil {
		return nil, fmt.Errorf("encode client metadata: %w", err)
	}
	if err := a.Store.CreateClient(ctx, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, metadataError(ErrInvalidClientMetadata, "client_id %q is already registered", m.ClientID)
		}
		return nil, fmt.Errorf("register client: %w", err)
	}
	if a.RegistrationEndpoint != "" {
		rat := randomValue(32)
		data, _ := json.Marshal(registrationData{ClientID: m.ClientID})
		if err := a.Store.PutToken(ctx, store.AuthToken{Kind: tokenRegistration, Hash: hashValue(rat), Data: data,
			CreatedAt: now, ExpiresAt: now.Add(RegistrationTokenLifetime)}); err != nil {
			return nil, fmt.Errorf("store registration access token: %w", err)
		}
		reg.RegistrationAccessToken = rat
		reg.RegistrationClientURI = a.RegistrationEndpoint + "/" + url.PathEscape(m.ClientID)
	}
	return reg, nil
}

// NewUser describes a user to add.
type NewUser struct {
	Username string
	Password string
	FHIRUser string // Patient/ID, Practitioner/ID, RelatedPerson/ID or Person/ID
	Roles    []string
}

// fhirUserTypes are the resource types a user account may stand for.
var fhirUserTypes = []string{"Patient", "Practitioner", "RelatedPerson", "Person"}

// AddUser checks and stores a new user: the fhirUser resource must exist,
// the roles must be known, the password is hashed with argon2id.
func (a *Admin) AddUser(ctx context.Context, u NewUser) error {
	if !validUsername(u.Username) {
		return errors.New("username must be 1-64 characters of a-z A-Z 0-9 . _ @ -")
	}
	typ, id, err := splitRef(u.FHIRUser)
	if err != nil {
		return fmt.Errorf("--fhir-user: %w", err)
	}
	ok := false
	for _, t := range fhirUserTypes {
		ok = ok || t == typ
	}
	if !ok {
		return fmt.Errorf("--fhir-user must be one of %s/ID", strings.Join(fhirUserTypes, "/ID, "))
	}
	if err := a.mustExist(ctx, typ, id); err != nil {
		return fmt.Errorf("--fhir-user %s: %w", u.FHIRUser, err)
	}
	if err := checkRoles(u.Roles); err != nil {
		return err
	}
	p := a.Argon2
	if p == (Argon2Params{}) {
		p = DefaultArgon2
	}
	hash, err := HashPassword(u.Password, p)
	if err != nil {
		return err
	}
	now := a.Clock.Now()
	err = a.Store.CreateUser(ctx, store.User{Username: u.Username, PasswordHash: hash, FHIRUser: typ + "/" + id,
		Roles: dedupe(u.Roles), CreatedAt: now, UpdatedAt: now})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("user %q already exists", u.Username)
	}
	return err
}

func (a *Admin) mustExist(ctx context.Context, typ, id string) error {
	_, err := a.Resources.Read(ctx, typ, id)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrGone):
		return errors.New("no such resource")
	default:
		return err
	}
}

func splitRef(ref string) (typ, id string, err error) {
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || !fhir.IsResourceType(typ) || !fhir.ValidID(id) {
		return "", "", fmt.Errorf("%q is not a Type/id reference", clip(ref))
	}
	return typ, id, nil
}

func validUsername(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@') {
			return false
		}
	}
	return true
}

// launchData is the payload of an EHR launch value.
type launchData struct {
	ClientID  string `json:"client_id"`
	Username  string `json:"username"`
	Patient   string `json:"patient,omitempty"`
	Encounter string `json:"encounter,omitempty"`
}

// NewLaunch creates a one-time EHR launch value bound to a client, user and
// context, valid LaunchLifetime.
func (a *Admin) NewLaunch(ctx context.Context, clientID, username, patient, encounter string) (string, error) {
	if _, err := a.Store.Client(ctx, clientID); err != nil {
		return "", fmt.Errorf("client %q: %w", clientID, notFoundMsg(err))
	}
	if _, err := a.Store.User(ctx, username); err != nil {
		return "", fmt.Errorf("user %q: %w", username, notFoundMsg(err))
	}
	if patient != "" {
		if err := a.mustExist(ctx, "Patient", patient); err != nil {
			return "", fmt.Errorf("patient %q: %w", patient, err)
		}
	}
	if encounter != "" {
		if err := a.mustExist(ctx, "Encounter", encounter); err != nil {
			return "", fmt.Errorf("encounter %q: %w", encounter, err)
		}
	}
	data, _ := json.Marshal(launchData{ClientID: clientID, Username: username, Patient: patient, Encounter: encounter})
	v := randomValue(24)
	now := a.Clock.Now()
	if err := a.Store.PutToken(ctx, store.AuthToken{Kind: store.TokenLaunch, Hash: hashValue(v), Data: data,
		CreatedAt: now, ExpiresAt: now.Add(LaunchLifetime)}); err != nil {
		return "", fmt.Errorf("store launch: %w", err)
	}
	return v, nil
}

// NewInitialAccessToken creates a one-time initial access token for
// dynamic registration (RFC 7591 §3), valid for ttl (DefaultIATLifetime
// when ≤ 0).
func (a *Admin) NewInitialAccessToken(ctx context.Context, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 {
		ttl = DefaultIATLifetime
	}
	v := randomValue(32)
	now := a.Clock.Now()
	exp := now.Add(ttl)
	if err := a.Store.PutToken(ctx, store.AuthToken{Kind: store.TokenIAT, Hash: hashValue(v), Data: []byte("{}"),
		CreatedAt: now, ExpiresAt: exp}); err != nil {
		return "", time.Time{}, fmt.Errorf("store initial access token: %w", err)
	}
	return v, exp, nil
}

func notFoundMsg(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errors.New("not found")
	}
	return err
}
