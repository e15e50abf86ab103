module github.com/fhirguard/fhirguard

go 1.26.8
