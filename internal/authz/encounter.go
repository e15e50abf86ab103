package authz

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/fhirguard/fhirguard/internal/policy/scopes"
	"github.com/fhirguard/fhirguard/internal/search"
)

// The standalone encounter picker (SMART context-standalone-encounter): a
// standalone launch that asks launch/encounter gets, once the patient is
// known, a list of that patient's Encounters (newest first, from the
// store's search) to choose from. A patient without encounters, or a user
// who chooses "continue without", gets no encounter context: SMART lets
// the server omit it, and the granted scope then lacks launch/encounter.

// encounterLimit caps the encounters listed by the picker.
const encounterLimit = 50

// needsEncounter: a standalone launch asking launch/encounter whose
// encounter step has not been taken yet.
func needsEncounter(asked scopes.Set, sess *session) bool {
	return !sess.Launch && asked.Has(scopes.LaunchEncounter) && sess.Patient != "" && sess.Encounter == "" && !sess.EncounterAsked
}

// encounterChoice is one picker entry.
type encounterChoice struct {
	ID, Label, Start, Status string
}

// encounterSearch builds Encounter?patient=P (newest first); with id set,
// only that encounter (&_id=E).
func (s *Server) encounterSearch(patient, id string, count int) (*search.Query, error) {
	v := url.Values{"patient": {"Patient/" + patient}, "_sort": {"-date"}, "_count": {strconv.Itoa(count)}, "_total": {"none"}}
	if id != "" {
		v.Set("_id", id)
	}
	q, _, err := search.Parse("Encounter", v, search.Options{Clock: s.clk, BaseURL: s.o.FHIRBase, MaxCount: encounterLimit})
	if err != nil {
		return nil, fmt.Errorf("encounter search: %w", err)
	}
	return q, nil
}

// listEncounters lists the patient's current Encounters for the picker
// (none when the store cannot search).
func (s *Server) listEncounters(ctx context.Context, patient string) ([]encounterChoice, error) {
	if s.search == nil {
		return nil, nil
	}
	q, err := s.encounterSearch(patient, "", encounterLimit)
	if err != nil {
		return nil, err
	}
	res, err := s.search.Search(ctx, q, nil)
	if err != nil {
		return nil, fmt.Errorf("list encounters: %w", err)
	}
	out := make([]encounterChoice, 0, len(res.Matches))
	for _, m := range res.Matches {
		out = append(out, encounterLabel(m.ID, m.Body))
	}
	// The search's order, except that undated encounters go last.
	slices.SortStableFunc(out, func(a, b encounterChoice) int {
		return cmp.Compare(boolInt(a.Start == ""), boolInt(b.Start == ""))
	})
	return out, nil
}

// patientEncounter reports whether id is a current Encounter of patient.
func (s *Server) patientEncounter(ctx context.Context, patient, id string) (bool, error) {
	if s.search == nil || !validRefID(id) {
		return false, nil
	}
	q, err := s.encounterSearch(patient, id, 1)
	if err != nil {
		return false, nil // an id the search grammar refuses is no choice
	}
	res, err := s.search.Search(ctx, q, nil)
	if err != nil {
		return false, fmt.Errorf("check encounter: %w", err)
	}
	return len(res.Matches) == 1 && res.Matches[0].ID == id, nil
}

// encounterLabel builds a picker entry from an Encounter body.
func encounterLabel(id string, body []byte) encounterChoice {
	type coding struct {
		Code    string `json:"code"`
		Display string `json:"display"`
	}
	var e struct {
		Status string `json:"status"`
		Class  coding `json:"class"`
		Type   []struct {
			Text   string   `json:"text"`
			Coding []coding `json:"coding"`
		} `json:"type"`
		Period struct {
			Start string `json:"start"`
		} `json:"period"`
	}
	_ = json.Unmarshal(body, &e) // a stored Encounter is valid JSON; missing parts fall back to the id
	c := encounterChoice{ID: id, Label: "Encounter " + id, Start: e.Period.Start, Status: e.Status}
	switch {
	case len(e.Type) > 0 && e.Type[0].Text != "":
		c.Label = e.Type[0].Text
	case len(e.Type) > 0 && len(e.Type[0].Coding) > 0 && e.Type[0].Coding[0].Display != "":
		c.Label = e.Type[0].Coding[0].Display
	case e.Class.Display != "":
		c.Label = e.Class.Display
	case classWords[e.Class.Code] != "":
		c.Label = classWords[e.Class.Code] + " encounter"
	case e.Class.Code != "":
		c.Label = e.Class.Code + " encounter"
	}
	return c
}

// classWords name the v3-ActEncounterCode classes.
var classWords = map[string]string{
	"AMB": "Ambulatory", "EMER": "Emergency", "FLD": "Field", "HH": "Home health", "IMP": "Inpatient",
	"ACUTE": "Inpatient acute", "NONAC": "Inpatient non-acute", "OBSENC": "Observation", "PRENC": "Pre-admission",
	"SS": "Short stay", "VR": "Virtual",
}

// showEncounterPicker renders the picker, or, when the patient has no
// encounters, records the step as taken and goes on to the consent page.
func (s *Server) showEncounterPicker(ctx context.Context, w http.ResponseWriter, hash string, client *Client, sess *session, asked scopes.Set) error {
	list, err := s.listEncounters(ctx, sess.Patient)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		sess.EncounterAsked = true
		if err := s.saveSession(ctx, hash, sess); err != nil {
			return err
		}
		return s.showConsent(ctx, w, client, sess, asked, "")
	}
	return s.pages.render(w, http.StatusOK, "encounter.html", pageData{Title: "Choose an encounter", Action: PathPickEnc,
		CSRF: sess.CSRF, ClientName: displayName(client), Patient: s.patientName(ctx, sess.Patient), Encounters: list},
		formTarget(sess.RedirectURI))
}

// pickEncounter takes the encounter picker's choice (an encounter of the
// session's patient, or "" to continue without one).
func (s *Server) pickEncounter(w http.ResponseWriter, r *http.Request) error {
	form, hash, sess, err := s.postedForm(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if sess.Username == "" || sess.Patient == "" || sess.Launch {
		return errSession
	}
	client, err := s.clientLookup(ctx, sess.ClientID, false)
	if err != nil {
		return errSession
	}
	if e := form.Get("encounter"); e != "" {
		ok, err := s.patientEncounter(ctx, sess.Patient, e)
		if err != nil {
			return err
		}
		if !ok {
			return &Error{Code: ErrInvalidRequest, Desc: "Choose one of the listed encounters."}
		}
		sess.Encounter = e
	}
	sess.EncounterAsked = true
	if err := s.saveSession(ctx, hash, sess); err != nil {
		return err
	}
	return s.next(ctx, w, hash, client, sess)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
