package policy

func create(typ string, newPatients ...string) (Request, Facts) {
	return Request{Interaction: Create, Type: typ}, Facts{Now: t0, NewPatients: newPatients}
}

func write(i Interaction, typ, id string, exists bool, old, nw []string) (Request, Facts) {
	return Request{Interaction: i, Type: typ, ID: id}, Facts{Now: t0, Exists: exists, ResourcePatients: old, NewPatients: nw}
}

func ps(p ...string) []string { return p }

// writeRows are create, update, patch and delete.
func writeRows() []decideRow {
	var rows []decideRow
	add := func(name, sc, patient string, r Request, f Facts, rule Rule) {
		rows = append(rows, decideRow{name: name, scopes: sc, patient: patient, req: r, facts: f, rule: rule})
	}
	r, f := create("Observation", "pA")
	add("ok/create in own compartment", "patient/Observation.cruds", "pA", r, f, RuleScope)
	add("ok/create c only", "patient/Observation.c", "pA", r, f, RuleScope)
	add("ok/create v1 write", "patient/Observation.write", "pA", r, f, RuleScope)
	add("ok/create user", "user/Observation.c", "", r, f, RuleScope)
	add("fail/create rs only", "patient/Observation.rs", "pA", r, f, RuleNotGranted)
	add("fail/create v1 read", "patient/Observation.read", "pA", r, f, RuleNotGranted)
	add("fail/create other type", "patient/Condition.c", "pA", r, f, RuleNotGranted)
	add("fail/create no patient context", "patient/Observation.c", "", r, f, RuleNoPatient)
	r, f = create("Observation", "pB")
	add("fail/create for another patient", "patient/Observation.cruds", "pA", r, f, RuleCompartment)
	add("ok/user creates for anyone", "user/Observation.cruds", "", r, f, RuleScope)
	r, f = create("Observation")
	add("fail/create outside every compartment", "patient/Observation.cruds", "pA", r, f, RuleCompartment)
	r, f = create("Patient")
	add("fail/patient creates a Patient", "patient/Patient.cruds", "pA", r, f, RuleCompartment)
	r, f = create("Observation", "pA")
	f.NewParams = lab()
	add("ok/granular create of a lab result", "patient/Observation.c?category="+labCat, "pA", r, f, RuleScope)
	f.NewParams = vit()
	add("fail/granular create of a vital sign", "patient/Observation.c?category="+labCat, "pA", r, f, RuleGranular)

	r, f = write(Update, "Observation", "o1", true, ps("pA"), ps("pA"))
	add("ok/update own", "patient/Observation.cruds", "pA", r, f, RuleScope)
	add("ok/update u only", "patient/Observation.u", "pA", r, f, RuleScope)
	add("ok/update v1 write", "patient/Observation.write", "pA", r, f, RuleScope)
	add("fail/update c only", "patient/Observation.c", "pA", r, f, RuleNotGranted)
	add("fail/update rs only", "patient/Observation.rs", "pA", r, f, RuleNotGranted)
	r, f = write(Update, "Observation", "o1", true, ps("pA"), ps("pB"))
	add("fail/update moves to another patient", "patient/Observation.cruds", "pA", r, f, RuleCompartment)
	add("ok/user update moves", "user/Observation.u", "", r, f, RuleScope)
	r, f = write(Update, "Observation", "oB", true, ps("pB"), ps("pA"))
	add("fail/update of a hidden resource", "patient/Observation.cruds", "pA", r, f, RuleCompartment)
	r, f = write(Update, "Observation", "new", false, nil, ps("pA"))
	add("fail/patient update-as-create", "patient/Observation.cruds", "pA", r, f, RuleCompartment)
	add("ok/user update-as-create with c and u", "user/Observation.cu", "", r, f, RuleScope)
	add("ok/user update-as-create with v1 write", "user/Observation.write", "", r, f, RuleScope)
	add("fail/user update-as-create without c", "user/Observation.u", "", r, f, RuleCreateOnWrite)
	add("fail/user update-as-create without u", "user/Observation.c", "", r, f, RuleCreateOnWrite)
	r, f = write(Update, "Observation", "new", false, nil, ps("pA"))
	f.NewParams = vit()
	add("fail/user granular update-as-create outside constraints", "user/Observation.cu?category="+labCat, "", r, f, RuleCreateOnWrite)
	r, f = write(Update, "Observation", "o1", true, ps("pA"), ps("pA"))
	f.ResourceParams, f.NewParams = lab(), vit()
	add("fail/granular update changes category", "patient/Observation.u?category="+labCat, "pA", r, f, RuleGranular)
	f.ResourceParams, f.NewParams = vit(), lab()
	add("fail/granular update of a resource outside constraints", "patient/Observation.u?category="+labCat, "pA", r, f, RuleGranular)
	f.ResourceParams, f.NewParams = lab(), lab()
	add("ok/granular update inside constraints", "patient/Observation.u?category="+labCat, "pA", r, f, RuleScope)

	r, f = write(Patch, "Observation", "o1", false, ps("pA"), ps("pA"))
	add("ok/patch own (Exists not needed)", "patient/Observation.u", "pA", r, f, RuleScope)
	add("fail/patch needs u", "patient/Observation.crds", "pA", r, f, RuleNotGranted)
	r, f = write(Patch, "Observation", "o1", true, ps("pA"), ps("pB"))
	add("fail/patch moves subject to another patient", "patient/Observation.cruds", "pA", r, f, RuleCompartment)
	r, f = write(Patch, "Patient", "pA", true, nil, nil)
	add("ok/patient patches own Patient", "patient/Patient.u", "pA", r, f, RuleScope)

	r, f = write(Delete, "Observation", "o1", true, ps("pA"), nil)
	add("ok/delete own", "patient/Observation.d", "pA", r, f, RuleScope)
	add("ok/delete v1 write", "patient/Observation.write", "pA", r, f, RuleScope)
	add("fail/delete needs d", "patient/Observation.cru", "pA", r, f, RuleNotGranted)
	r, f = write(Delete, "Observation", "oB", true, ps("pB"), nil)
	add("fail/delete another patient's", "patient/Observation.cruds", "pA", r, f, RuleCompartment)
	add("ok/system delete", "system/*.cruds", "", r, f, RuleScope)
	return rows
}

// searchRows are searches, history and conditional interactions.
func searchRows() []decideRow {
	var rows []decideRow
	add := func(name, sc, patient string, r Request, rule Rule, n *narrow) {
		rows = append(rows, decideRow{name: name, scopes: sc, patient: patient, req: r, facts: Facts{Now: t0}, rule: rule, narrow: n})
	}
	obs := []string{"Observation"}
	add("ok/patient search", "patient/Observation.rs", "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), types: obs})
	add("ok/s only search", "patient/Observation.s", "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), types: obs})
	add("ok/v1 read searches", "patient/Observation.read", "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), types: obs})
	add("ok/type history is s", "patient/Observation.s", "pA", Request{Interaction: HistoryType, Type: "Observation"}, RuleScope,
		&narrow{patients: ps("pA"), types: obs})
	add("ok/user search", "user/Observation.rs", "", search("Observation"), RuleScope, &narrow{types: obs})
	add("ok/user wildcard narrows nothing", "user/*.rs", "", search("Observation"), RuleScope, &narrow{})
	add("ok/system wildcard narrows nothing", "system/*.read", "", search("Observation"), RuleScope, &narrow{})
	add("ok/patient wildcard keeps compartment types", "patient/*.rs", "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), has: []string{"Observation", "Patient", "Encounter", "Condition"}, lacks: []string{"Practitioner", "Medication", "Organization"}})
	add("ok/patient wildcard plus user non-member", "patient/*.rs user/Practitioner.rs", "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), has: []string{"Observation", "Practitioner"}, lacks: []string{"Medication"}})
	add("ok/user type searched, patient types dropped", "user/Encounter.rs patient/Observation.rs", "pA", search("Encounter"), RuleScope,
		&narrow{types: []string{"Encounter"}})
	add("ok/patient type searched confines all members", "user/Encounter.rs patient/Observation.rs", "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), types: []string{"Encounter", "Observation"}})
	add("ok/granular search", labScop, "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), types: obs, restr: "Observation:category=" + labCat})
	add("ok/granular search union", labScop+" "+vitScop, "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), types: obs, restr: "Observation:category=" + labCat + " OR category=" + vitCat})
	add("ok/granular same constraint twice", labScop+" patient/Observation.s?category="+labCat, "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), types: obs, restr: "Observation:category=" + labCat})
	add("ok/granular and plain is plain", labScop+" patient/Observation.s", "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), types: obs})
	add("ok/granular two params", "user/Condition.rs?category=problem-list-item&clinical-status=active", "", search("Condition"), RuleScope,
		&narrow{types: []string{"Condition"}, restr: "Condition:category=problem-list-item&clinical-status=active"})
	add("ok/granular on other type kept for includes", "patient/Observation.rs patient/Condition.rs?category=problem-list-item", "pA", search("Observation"), RuleScope,
		&narrow{patients: ps("pA"), types: []string{"Condition", "Observation"}, restr: "Condition:category=problem-list-item"})
	add("ok/user granular beats patient plain (narrower)", "user/Observation.s?category=laboratory patient/Observation.s", "pA", search("Observation"), RuleScope,
		&narrow{types: obs, restr: "Observation:category=laboratory"})
	add("ok/granular wildcard applies per type", "user/*.s?_security=http://x|N", "", search("Observation"), RuleScope,
		&narrow{restr: "*"})
	add("fail/search other type", "patient/Observation.rs", "pA", search("Condition"), RuleNotGranted, nil)
	add("fail/r only does not search", "patient/Observation.r", "pA", search("Observation"), RuleNotGranted, nil)
	add("fail/write does not search", "user/*.write", "", search("Observation"), RuleNotGranted, nil)
	add("fail/patient search without context", "patient/Observation.rs", "", search("Observation"), RuleNoPatient, nil)
	add("fail/patient search of non-member type", "patient/Practitioner.rs", "pA", search("Practitioner"), RuleCompartment, nil)

	sys := func(types ...string) Request { return Request{Interaction: SearchSystem, Types: types} }
	add("ok/system search all types", "patient/Observation.rs", "pA", sys(), RuleScope, &narrow{patients: ps("pA"), types: obs})
	add("ok/system search listed types", "patient/*.rs", "pA", sys("Observation", "Condition"), RuleScope,
		&narrow{patients: ps("pA"), has: []string{"Observation", "Condition"}, lacks: []string{"Practitioner"}})
	add("ok/system history", "user/*.s", "", Request{Interaction: HistorySystem}, RuleScope, &narrow{})
	add("ok/system search mixed tiers", "user/Encounter.s patient/Observation.s", "pA", sys(), RuleScope,
		&narrow{patients: ps("pA"), types: []string{"Encounter", "Observation"}})
	add("fail/system search listed type not granted", "patient/Observation.rs", "pA", sys("Observation", "Condition"), RuleNotGranted, nil)
	add("fail/system search nothing searchable", "patient/Observation.r", "pA", sys(), RuleNotGranted, nil)
	add("fail/system search patient scopes without context", "patient/*.rs", "", sys(), RuleNoPatient, nil)

	comp := func(id, typ string) Request {
		return Request{Interaction: SearchCompartment, Type: typ, Compartment: Reference{Type: "Patient", ID: id}}
	}
	add("ok/own compartment search", "patient/Observation.rs", "pA", comp("pA", "Observation"), RuleScope, &narrow{patients: ps("pA"), types: obs})
	add("ok/own compartment all types", "patient/Observation.rs patient/Condition.rs", "pA", comp("pA", "*"), RuleScope,
		&narrow{patients: ps("pA"), types: []string{"Condition", "Observation"}})
	add("ok/user compartment search", "user/Observation.rs", "", comp("pB", "Observation"), RuleScope, &narrow{types: obs})
	add("fail/other patient's compartment", "patient/Observation.rs", "pA", comp("pB", "Observation"), RuleCompartment, nil)
	add("fail/other patient's compartment all types", "patient/*.rs", "pA", comp("pB", ""), RuleCompartment, nil)
	add("fail/compartment type not granted", "patient/Observation.rs", "pA", comp("pA", "Condition"), RuleNotGranted, nil)
	add("fail/compartment no type granted", "patient/Practitioner.rs", "pA", comp("pA", "*"), RuleNotGranted, nil)
	add("fail/non-patient compartment", "user/*.rs", "", Request{Interaction: SearchCompartment, Type: "Observation", Compartment: Reference{Type: "Encounter", ID: "e1"}}, RuleBadRequest, nil)
	add("fail/compartment without id", "user/*.rs", "", comp("", "Observation"), RuleBadRequest, nil)
	add("fail/compartment unknown type", "user/*.rs", "", comp("pA", "Nope"), RuleBadRequest, nil)

	cond := func(i Interaction) Request { return Request{Interaction: i, Type: "Observation", Conditional: true} }
	add("ok/conditional update narrows by u", "patient/Observation.u", "pA", cond(Update), RuleScope, &narrow{patients: ps("pA"), types: obs})
	add("ok/conditional create narrows by c", "user/Observation.c", "", cond(Create), RuleScope, &narrow{types: obs})
	add("ok/conditional delete narrows by d", "patient/Observation.d?category=laboratory", "pA", cond(Delete), RuleScope,
		&narrow{patients: ps("pA"), types: obs, restr: "Observation:category=laboratory"})
	add("ok/conditional patch", "user/*.u", "", cond(Patch), RuleScope, &narrow{})
	add("fail/conditional update without u", "patient/Observation.rs", "pA", cond(Update), RuleNotGranted, nil)
	add("fail/conditional delete without d", "patient/Observation.cru", "pA", cond(Delete), RuleNotGranted, nil)
	add("fail/conditional create without c", "patient/Observation.rus", "pA", cond(Create), RuleNotGranted, nil)
	return rows
}
