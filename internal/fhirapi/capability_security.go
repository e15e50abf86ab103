package fhirapi

// OAuthURIs are the authorization server's endpoints, advertised in the
// CapabilityStatement's rest.security (SMART App Launch 2.2 §"Declaring
// support": the SMART-on-FHIR service and the oauth-uris extension).
type OAuthURIs struct {
	Authorize, Token, Register, Introspect, Revoke, Manage string
	// CORS is rest.security.cors: true when browser apps of configured
	// origins may call the API (cors.allowed_origins).
	CORS bool
}

// The SMART security declaration.
const (
	systemRestSecurity = "http://terminology.hl7.org/CodeSystem/restful-security-service"
	extOAuthURIs       = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
)

type capCoding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type capConcept struct {
	Coding []capCoding `json:"coding"`
	Text   string      `json:"text,omitempty"`
}

type capExtension struct {
	URL       string         `json:"url"`
	ValueURI  string         `json:"valueUri,omitempty"`
	Extension []capExtension `json:"extension,omitempty"`
}

type capSecurity struct {
	Extension   []capExtension `json:"extension,omitempty"`
	CORS        bool           `json:"cors"`
	Service     []capConcept   `json:"service"`
	Description string         `json:"description,omitempty"`
}

// securityOf renders rest.security for u (nil when the API runs without an
// authorization server); cors as configured.
func securityOf(u *OAuthURIs) *capSecurity {
	if u == nil {
		return nil
	}
	var ext []capExtension
	for _, e := range []struct{ name, uri string }{
		{"authorize", u.Authorize}, {"token", u.Token}, {"register", u.Register},
		{"introspect", u.Introspect}, {"revoke", u.Revoke}, {"manage", u.Manage},
	} {
		if e.uri != "" {
			ext = append(ext, capExtension{URL: e.name, ValueURI: e.uri})
		}
	}
	return &capSecurity{
		CORS:      u.CORS,
		Extension: []capExtension{{URL: extOAuthURIs, Extension: ext}},
		Service: []capConcept{{Coding: []capCoding{{System: systemRestSecurity, Code: "SMART-on-FHIR",
			Display: "SMART-on-FHIR"}}, Text: "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)"}},
		Description: "Every request except this CapabilityStatement needs a bearer access token from the SMART authorization server (discovery: .well-known/smart-configuration).",
	}
}
