package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/internal/store"
)

// next shows the patient picker when a patient must be chosen, then the
// encounter picker when a standalone launch asks for one, else the consent
// page.
func (s *Server) next(ctx context.Context, w http.ResponseWriter, hash string, client *Client, sess *session) error {
	asked, err := scopes.Parse(sess.Scope)
	if err != nil {
		return errSession
	}
	if sess.Patient == "" && needsPatient(asked) {
		list, err := s.listPatients(ctx, pickerLimit)
		if err != nil {
			return err
		}
		return s.pages.render(w, http.StatusOK, "picker.html", pageData{Title: "Choose a patient", Action: PathPick,
			CSRF: sess.CSRF, ClientName: displayName(client), Patients: list}, formTarget(sess.RedirectURI))
	}
	if needsEncounter(asked, sess) {
		return s.showEncounterPicker(ctx, w, hash, client, sess, asked)
	}
	return s.showConsent(ctx, w, client, sess, asked, "")
}

// needsPatient: launch/patient or patient/ scopes need a patient context.
func needsPatient(asked scopes.Set) bool {
	if asked.Has(scopes.LaunchPatient) {
		return true
	}
	for _, sc := range asked.Resource() {
		if sc.Context == scopes.ContextPatient {
			return true
		}
	}
	return false
}

func (s *Server) showConsent(ctx context.Context, w http.ResponseWriter, client *Client, sess *session, asked scopes.Set, message string) error {
	var lines []scopeLine
	for i, sc := range asked.Scopes() {
		lines = append(lines, scopeLine{ID: "scope-" + strconv.Itoa(i), Raw: sc.Raw, Words: scopeWords(sc),
			Optional: sc.Kind == scopes.Resource})
	}
	patient := s.patientName(ctx, sess.Patient)
	encounter := ""
	if e := sess.encounter(); e != "" {
		encounter = "Encounter " + e
		if res, err := s.o.Resources.Read(ctx, "Encounter", e); err == nil {
			encounter = encounterLabel(e, res.Body).Label
		}
	}
	status := http.StatusOK
	if message != "" {
		status = http.StatusBadRequest
	}
	return s.pages.render(w, status, "consent.html", pageData{Title: "Allow access?", Action: PathConsent,
		CSRF: sess.CSRF, ClientName: displayName(client), Patient: patient, Encounter: encounter, Purpose: sess.BTG, Scopes: lines,
		Message: message},
		formTarget(sess.RedirectURI))
}

// patientName is the display name of a patient ("" for none; the id when
// it cannot be read).
func (s *Server) patientName(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	if res, err := s.o.Resources.Read(ctx, "Patient", id); err == nil {
		return patientLabel(id, res.Body).Name
	}
	return id
}

// pick takes the picker's choice.
func (s *Server) pick(w http.ResponseWriter, r *http.Request) error {
	form, hash, sess, err := s.postedForm(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if sess.Username == "" {
		return errSession
	}
	client, err := s.clientLookup(ctx, sess.ClientID, false)
	if err != nil {
		return errSession
	}
	p := form.Get("patient")
	if err := s.admin.mustExist(ctx, "Patient", p); err != nil || !validRefID(p) {
		return &Error{Code: ErrInvalidRequest, Desc: "Choose one of the listed patients."}
	}
	sess.Patient = p
	if err := s.saveSession(ctx, hash, sess); err != nil {
		return err
	}
	return s.next(ctx, w, hash, client, sess)
}

func validRefID(id string) bool { _, _, err := splitRef("Patient/" + id); return err == nil }

// consent takes the user's decision: deny → access_denied at the client;
// allow → an authorization code for the granted scopes (those not unticked
// ∩ the client's registration ∩ the user's roles, and the launch scopes
// whose context exists).
func (s *Server) consent(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodPost); err != nil {
		return err
	}
	form, err := readFormMulti(r, "scope")
	if err != nil {
		return err
	}
	ctx := r.Context()
	hash, sess, err := s.loadSession(ctx, r, form.Get("csrf"), true)
	if err != nil {
		return err
	}
	if sess.Username == "" {
		return errSession
	}
	if sess.Patient == "" {
		if asked, _ := scopes.Parse(sess.Scope); needsPatient(asked) {
			return errSession
		}
	}
	switch form.Get("decision") {
	case "allow":
	case "deny":
		if err := s.endSession(ctx, w, hash); err != nil {
			return err
		}
		return redirectError(w, r, sess.RedirectURI, sess.State, ErrAccessDenied, "the user denied access")
	default:
		return &Error{Code: ErrInvalidRequest, Desc: "Choose Allow or Deny."}
	}
	client, err := s.clientLookup(ctx, sess.ClientID, false)
	if err != nil {
		return errSession
	}
	user, err := s.o.Store.User(ctx, sess.Username)
	if err != nil || user.Disabled {
		return errSession
	}
	reason := ""
	if sess.BTG {
		// Break the glass needs a stated reason (audited with every access).
		reason = strings.TrimSpace(form.Get("reason"))
		if reason == "" || len(reason) > maxReasonBytes {
			asked, _ := scopes.Parse(sess.Scope)
			return s.showConsent(ctx, w, client, sess, asked,
				fmt.Sprintf("Give the reason for emergency access (1 to %d characters).", maxReasonBytes))
		}
	}
	granted := s.grantFor(sess, form["scope"], client, user)
	code, err := s.newCode(ctx, sess, client, user, granted, reason)
	if err != nil {
		return err
	}
	if err := s.endSession(ctx, w, hash); err != nil {
		return err
	}
	return redirectTo(w, r, sess.RedirectURI, url.Values{"code": {code}, "state": {sess.State}, "iss": {s.Issuer()}})
}

// grantFor computes the granted scope of a consent.
func (s *Server) grantFor(sess *session, kept []string, client *Client, user *store.User) scopes.Set {
	asked, _ := scopes.Parse(sess.Scope)
	asked = asked.Filter(func(sc scopes.Scope) bool { return sc.Kind != scopes.Resource || slices.Contains(kept, sc.Raw) })
	granted := scopes.Grant(asked, client.Allowed, userAllowed(user.FHIRUser, user.Roles))
	return granted.Filter(func(sc scopes.Scope) bool {
		switch sc.Kind {
		case scopes.Launch:
			return sess.Launch
		case scopes.LaunchPatient:
			return sess.Patient != ""
		case scopes.LaunchEncounter:
			return sess.encounter() != ""
		case scopes.Resource:
			return sc.Context != scopes.ContextPatient || sess.Patient != ""
		}
		return true
	})
}

// codeData is the payload of an authorization code (and, minus the PKCE
// and redirect parts, of the refresh tokens issued from it).
type codeData struct {
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri,omitempty"`
	CodeChallenge string   `json:"code_challenge,omitempty"`
	Scope         string   `json:"scope"`
	Username      string   `json:"username"`
	FHIRUser      string   `json:"fhir_user"`
	Roles         []string `json:"roles,omitempty"`
	Patient       string   `json:"patient,omitempty"`
	Encounter     string   `json:"encounter,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	Purpose       []string `json:"purpose,omitempty"`
	PurposeText   string   `json:"purpose_text,omitempty"`
	AuthTime      int64    `json:"auth_time,omitempty"`
	Banner        bool     `json:"banner,omitempty"`
	// SID is the sign-in session the authorization was made in (binds
	// online_access refresh tokens; the id_token's sid).
	SID string `json:"sid,omitempty"`
}

// CodeLifetime is how long an authorization code is valid (AUTHN-06).
const CodeLifetime = 60 * time.Second

// maxReasonBytes bounds a break-the-glass reason.
const maxReasonBytes = 500

func (s *Server) newCode(ctx context.Context, sess *session, client *Client, user *store.User, granted scopes.Set, reason string) (string, error) {
	cd := codeData{ClientID: client.ClientID, RedirectURI: sess.RedirectURI, CodeChallenge: sess.CodeChallenge,
		Scope: granted.String(), Username: user.Username, FHIRUser: user.FHIRUser, Roles: user.Roles,
		Nonce: sess.Nonce, AuthTime: sess.AuthTime, SID: sess.SID}
	if granted.Has(scopes.LaunchPatient) || hasPatientScope(granted) || sess.Launch {
		cd.Patient = sess.Patient
	}
	if sess.Launch || granted.Has(scopes.LaunchEncounter) {
		cd.Encounter = sess.encounter()
	}
	// A standalone app needs to show who the patient is; an EHR shows it.
	cd.Banner = cd.Patient != "" && !sess.Launch
	if sess.BTG {
		cd.Purpose, cd.PurposeText = []string{PurposeBTG}, reason
	}
	data, err := json.Marshal(cd)
	if err != nil {
		return "", fmt.Errorf("encode code: %w", err)
	}
	code := randomValue(32)
	now := s.clk.Now()
	if err := s.o.Store.PutToken(ctx, store.AuthToken{Kind: store.TokenCode, Hash: hashValue(code), Grant: randomValue(16),
		Data: data, CreatedAt: now, ExpiresAt: now.Add(CodeLifetime)}); err != nil {
		return "", fmt.Errorf("store code: %w", err)
	}
	return code, nil
}

func hasPatientScope(set scopes.Set) bool {
	for _, sc := range set.Resource() {
		if sc.Context == scopes.ContextPatient {
			return true
		}
	}
	return false
}

// pickerLimit caps the patients listed by the picker.
const pickerLimit = 100

// listPatients lists current patients (newest first) for the picker.
func (s *Server) listPatients(ctx context.Context, limit int) ([]patientChoice, error) {
	seen := map[string]bool{}
	var out []patientChoice
	var before int64
	for pages := 0; pages < 20 && len(out) < limit; pages++ {
		page, err := s.o.Resources.History(ctx, store.HistoryQuery{Type: "Patient", Count: 200, Before: before})
		if err != nil {
			return nil, fmt.Errorf("list patients: %w", err)
		}
		for _, res := range page.Entries {
			if seen[res.ID] {
				continue
			}
			seen[res.ID] = true // newest version first: later ones are older
			if res.Deleted {
				continue
			}
			out = append(out, patientLabel(res.ID, res.Body))
			if len(out) >= limit {
				break
			}
		}
		if page.Next == 0 {
			break
		}
		before = page.Next
	}
	return out, nil
}

// patientLabel builds a picker entry from a Patient body.
func patientLabel(id string, body []byte) patientChoice {
	var p struct {
		Name []struct {
			Text   string   `json:"text"`
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
		BirthDate string `json:"birthDate"`
	}
	_ = json.Unmarshal(body, &p) // a stored Patient is valid JSON; a missing name falls back to the id
	c := patientChoice{ID: id, Name: id, BirthDate: p.BirthDate}
	if len(p.Name) > 0 {
		n := p.Name[0]
		switch {
		case n.Text != "":
			c.Name = n.Text
		case n.Family != "" || len(n.Given) > 0:
			c.Name = strings.TrimSpace(strings.Join(n.Given, " ") + " " + n.Family)
		}
	}
	return c
}
