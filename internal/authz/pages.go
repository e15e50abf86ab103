package authz

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/fhir"
	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/web"
)

// pages renders the HTML pages of the authorize flow.
type pages struct {
	tmpl *template.Template
}

func newPages() (*pages, error) {
	t, err := template.ParseFS(web.Templates, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("authz: parse page templates: %w", err)
	}
	return &pages{tmpl: t}, nil
}

// pageData is what every template gets.
type pageData struct {
	Title      string
	Static     string
	Action     string
	CSRF       string
	ClientName string
	Message    string
	Patient    string
	Encounter  string
	Purpose    bool
	Scopes     []scopeLine
	Patients   []patientChoice
	Encounters []encounterChoice
	// The logout confirmation.
	Confirm                             bool
	ClientID, PostLogoutRedirect, State string
}

type scopeLine struct {
	ID, Raw, Words string
	Optional       bool
}

type patientChoice struct {
	ID, Name, BirthDate string
}

// render writes a page with a strict CSP: no script at all, styles and
// images only from this server, forms posting only to this server (and,
// through the redirect that follows a form, to formTarget), never framed.
func (p *pages) render(w http.ResponseWriter, status int, name string, d pageData, formTarget string) error {
	d.Static = PathStatic
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, name, d); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	h := w.Header()
	formAction := "'self'"
	if formTarget != "" {
		formAction += " " + formTarget
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action "+formAction+
		"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// errorEncoder renders failures of the page endpoints as the HTML error
// page (an httpx.Encoder): the client-safe message only.
func (p *pages) errorEncoder(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusBadRequest, "The request is not valid."
	var oe *Error
	if errors.As(err, &oe) {
		status, msg = oe.HTTPStatus(), oe.Desc
		if msg == "" {
			msg = strings.ReplaceAll(oe.Code, "_", " ")
		}
		for k, vs := range oe.Hdr {
			w.Header()[k] = vs
		}
	} else if fe, ok := fhir.AsError(err); ok {
		status, msg = fe.HTTPStatus(), fe.Diag
		for k, vs := range fe.Header {
			w.Header()[k] = vs
		}
	}
	if rerr := p.render(w, status, "error.html", pageData{Title: "Authorization failed", Message: msg}, ""); rerr != nil {
		http.Error(w, msg, status)
	}
}

// static serves the embedded stylesheet and SMART style file.
func (s *Server) static(w http.ResponseWriter, r *http.Request) error {
	if err := requireMethod(r, http.MethodGet); err != nil {
		return err
	}
	name := path.Clean(strings.TrimPrefix(r.URL.Path, PathStatic))
	b, err := fs.ReadFile(web.Static, "static/"+name)
	if err != nil || strings.Contains(name, "..") {
		return &Error{Code: ErrInvalidRequest, Desc: "no such file", Status: http.StatusNotFound}
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	if strings.HasSuffix(name, ".json") {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	}
	_, err = w.Write(b)
	return err
}

// formTarget is the CSP source of a redirect URI (scheme://host[:port],
// or "scheme:" for a private-use scheme).
func formTarget(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme == "" {
		return ""
	}
	if u.Host == "" {
		return u.Scheme + ":"
	}
	return u.Scheme + "://" + u.Host
}

// scopeWords describes a scope in plain words for the consent page.
func scopeWords(sc scopes.Scope) string {
	switch sc.Kind {
	case scopes.Launch:
		return "Use the context it was launched from"
	case scopes.LaunchPatient:
		return "Know which patient is selected"
	case scopes.LaunchEncounter:
		return "Know which encounter is selected"
	case scopes.OpenID:
		return "Confirm your identity"
	case scopes.FHIRUser:
		return "Know who you are (your FHIR user record)"
	case scopes.Profile:
		return "See your basic profile"
	case scopes.OfflineAccess:
		return "Keep access after you close the app (until revoked)"
	case scopes.OnlineAccess:
		return "Keep access while you are using the app"
	case scopes.Resource:
		var who string
		switch sc.Context {
		case scopes.ContextPatient:
			who = "for the selected patient"
		case scopes.ContextUser:
			who = "that you can access"
		default:
			who = "on the whole system"
		}
		what := "all kinds of records"
		if sc.Type != "*" {
			what = sc.Type + " records"
		}
		var verbs []string
		for _, v := range []struct {
			p scopes.Perm
			w string
		}{{scopes.PermC, "create"}, {scopes.PermR, "read"}, {scopes.PermU, "update"}, {scopes.PermD, "delete"}, {scopes.PermS, "search"}} {
			if sc.Perms.Has(v.p) {
				verbs = append(verbs, v.w)
			}
		}
		s := strings.ToUpper(verbs[0][:1]) + verbs[0][1:]
		if len(verbs) > 1 {
			s += ", " + strings.Join(verbs[1:len(verbs)-1], ", ")
			s = strings.TrimSuffix(s, ", ") + " and " + verbs[len(verbs)-1]
		}
		s += " " + what + " " + who
		if sc.Granular() {
			s += " (only those matching " + sc.Query.Encode() + ")"
		}
		return s
	}
	return "Unknown permission"
}
