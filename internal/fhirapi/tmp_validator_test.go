package fhirapi

func testValidator() *tmpValidator { return &tmpValidator{} }
