package storetest

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/fhirguard/fhirguard/internal/search"
	"github.com/fhirguard/fhirguard/internal/store"
)

// The near cases: Locations around Boston, on both sides of the
// antimeridian (Fiji) and around the North Pole. Great-circle distances
// (mean Earth radius 6371.0088 km): Boston–Cambridge 4.44 km,
// Boston–Worcester 62.08 km, Boston–New York 306.11 km; from
// (-17.0, 179.9): Taveuni 23.08 km, Suva 200.01 km; from (-16.9, -179.99):
// Taveuni 7.00 km; from the pole (90, 0): pole1 and pole2 11.12 km, pole3
// 55.60 km; from (89.95, 45): pole1 8.19 km, pole2 15.56 km, pole3
// 51.82 km.

func location(lat, lon string) map[string]any {
	l := map[string]any{"resourceType": "Location", "status": "active"}
	if lat != "" {
		l["position"] = map[string]any{"latitude": json.Number(lat), "longitude": json.Number(lon)}
	}
	return l
}

func loadLocations(t *testing.T, s store.Store) {
	t.Helper()
	ctx := ctxT(t)
	locs := []struct{ id, lat, lon string }{
		{"boston", "42.3601", "-71.0589"}, {"cambridge", "42.3736", "-71.1097"}, {"worcester", "42.2626", "-71.8023"},
		{"nyc", "40.7128", "-74.0060"}, {"suva", "-18.1416", "178.4419"}, {"taveuni", "-16.85", "-179.95"},
		{"pole1", "89.9", "0"}, {"pole2", "89.9", "180"}, {"pole3", "89.5", "90"}, {"nowhere", "", ""},
	}
	if err := s.Tx(ctx, func(tx store.Tx) error {
		for _, l := range locs {
			data := location(l.lat, l.lon)
			data["name"] = l.id
			if _, err := tx.Put(ctx, store.Write{Type: "Location", ID: l.id, Data: data}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("load locations: %v", err)
	}
}

func locs(list ...string) []string { return ids("Location", list...) }

var geoCases = []testCase{
	{"ok/near", func(t *testing.T, s store.Store) {
		loadLocations(t, s)
		for _, c := range []queryCase{
			{"Location?near=42.3601|-71.0589|10|km", locs("boston", "cambridge")},
			{"Location?near=42.3601|-71.0589", locs("boston", "cambridge")}, // default 5 km
			{"Location?near=42.3601|-71.0589|4|km", locs("boston")},
			{"Location?near=42.3601|-71.0589|4400|m", locs("boston")},
			{"Location?near=42.3601|-71.0589|4500|m", locs("boston", "cambridge")},
			{"Location?near=42.3601|-71.0589|38|[mi_i]", locs("boston", "cambridge")},            // 61.2 km
			{"Location?near=42.3601|-71.0589|39|mi_i", locs("boston", "cambridge", "worcester")}, // 62.8 km
			{"Location?near=42.3601|-71.0589|306|km", locs("boston", "cambridge", "worcester")},
			{"Location?near=42.3601|-71.0589|307|km", locs("boston", "cambridge", "worcester", "nyc")},
			{"Location?near=42.3601|-71.0589|0|km", locs("boston")},
			{"Location?near=0|0|20100|km", locs("boston", "cambridge", "worcester", "nyc", "suva", "taveuni", "pole1", "pole2", "pole3")},
			{"Location?near=42.3736|-71.1097|1|km,40.7128|-74.0060|1|km", locs("cambridge", "nyc")},
			{"Location?near=42.3601|-71.0589|100|km&near=40.7128|-74.0060|300|km", locs("worcester")},
			{"Location?near=42.3601|-71.0589|100|km&name=cam", locs("cambridge")},
			// across the antimeridian, either side of the centre
			{"Location?near=-17.0|179.9|30|km", locs("taveuni")},
			{"Location?near=-16.9|-179.99|10|km", locs("taveuni")},
			{"Location?near=-17.0|179.9|201|km", locs("suva", "taveuni")},
			// around the pole (no longitude bound)
			{"Location?near=90|0|12|km", locs("pole1", "pole2")},
			{"Location?near=89.95|45|10|km", locs("pole1")},
			{"Location?near=89.95|45|52|km", locs("pole1", "pole2", "pole3")},
			{"Location?near:missing=true", locs("nowhere")},
			{"Location?near:missing=false&name=pole", locs("pole1", "pole2", "pole3")},
		} {
			res := runSearch(t, s, parseQuery(t, c.spec), nil)
			if got := refs(res.Matches); !slices.Equal(got, c.want) || res.Total != len(c.want) {
				t.Errorf("%s: %v (total %d), want %v", c.spec, got, res.Total, c.want)
			}
		}
		// Paged: every match once, the total right.
		got, total := pageAll(t, s, parseQuery(t, "Location?near=42.3601|-71.0589|307|km&_count=1&_sort=-name"))
		if want := locs("worcester", "nyc", "cambridge", "boston"); !slices.Equal(got, want) || total != 4 {
			t.Errorf("paged near: %v (total %d), want %v", got, total, want)
		}
	}},
	{"ok/near-under-narrowing-and-after-update", func(t *testing.T, s store.Store) {
		loadLocations(t, s)
		q := narrowed(t, "Location?near=42.3601|-71.0589|10|km&_count=1", &search.Narrowing{ExcludeIDs: []string{"Location/boston"}})
		if got, total := pageAll(t, s, q); !slices.Equal(got, locs("cambridge")) || total != 1 {
			t.Errorf("narrowed near: %v (total %d)", got, total)
		}
		// Moved to New York: found there, no longer in Boston.
		moved := location("40.7130", "-74.0062")
		mustPut(t, s, store.Write{Type: "Location", ID: "cambridge", Data: moved})
		for spec, want := range map[string][]string{
			"Location?near=42.3601|-71.0589|10|km": locs("boston"),
			"Location?near=40.7128|-74.0060|1|km":  locs("cambridge", "nyc"),
		} {
			if got := refs(runSearch(t, s, parseQuery(t, spec), nil).Matches); !slices.Equal(got, want) {
				t.Errorf("after the move, %s: %v, want %v", spec, got, want)
			}
		}
		mustDelete(t, s, "Location", "nyc")
		if got := refs(runSearch(t, s, parseQuery(t, "Location?near=40.7128|-74.0060|1|km"), nil).Matches); !slices.Equal(got, locs("cambridge")) {
			t.Errorf("after delete: %v", got)
		}
	}},
}
