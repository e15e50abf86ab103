// Package web holds fhirguard's embedded HTML templates and static files
// (the authorization server's login, consent, patient-picker and error
// pages, and their stylesheet). The pages work without JavaScript and
// contain no inline script or style, so they are served under a strict
// Content-Security-Policy.
package web

import "embed"

// Templates are the html/template sources (templates/*.html).
//
//go:embed templates/*.html
var Templates embed.FS

// Static are the static files (static/*), served as they are.
//
//go:embed static/*
var Static embed.FS
