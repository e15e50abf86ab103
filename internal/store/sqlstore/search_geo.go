package sqlstore

import (
	"math"

	"github.com/fhirguard/fhirguard/internal/fhir/searchparam"
	"github.com/fhirguard/fhirguard/internal/search"
)

// Geographic search: Location?near=latitude|longitude|distance|units.
//
// Each position is kept (sp_geo) as its latitude and longitude and as the
// unit vector p = (cos φ cos λ, cos φ sin λ, sin φ) of the point on the
// sphere. Two points at great-circle distance d (central angle θ = d/R)
// are a chord c = |p - q| = 2 sin(θ/2) apart, so "within d" is
//
//	(x - x0)² + (y - y0)² + (z - z0)² ≤ (2 sin(d / 2R))²
//
// — the haversine formula (hav θ = c²/4) written with + - * only, which
// SQLite and PostgreSQL both evaluate; the filter is exact (no rows are
// removed after the SQL, so paging and totals stay right). A bounding box
// on latitude (and longitude, where it does not wrap over a pole) comes
// first, for the (pid, lat) index. The sphere is the mean Earth radius
// (IUGG, 6371.0088 km); results are not sorted by distance.

// earthRadiusKm is the mean Earth radius.
const earthRadiusKm = 6371.0088

// geographic reports whether p is the special parameter near, the one
// special parameter that is indexed (its rows are positions).
func geographic(p *searchparam.Param) bool {
	return p.Type == searchparam.TypeSpecial && p.Code == "near" && p.Expression != ""
}

// unitVector returns the point at latitude lat and longitude lon (degrees)
// on the unit sphere.
func unitVector(lat, lon float64) (x, y, z float64) {
	phi, lambda := lat*math.Pi/180, lon*math.Pi/180
	return math.Cos(phi) * math.Cos(lambda), math.Cos(phi) * math.Sin(lambda), math.Sin(phi)
}

// nearCond is the condition "the position in row x is within v's distance
// of v's point".
func (b *builder) nearCond(x string, v search.NearValue) string {
	lat, lon := v.Lat.Float64(), v.Long.Float64()
	theta := v.Kilometres() / earthRadiusKm // central angle, radians
	if theta >= math.Pi {
		return "1 = 1" // half the circumference or more: every point
	}
	deg := theta * 180 / math.Pi
	cond := x + ".lat >= " + b.arg(math.Max(lat-deg, -90)) + " AND " + x + ".lat <= " + b.arg(math.Min(lat+deg, 90))
	if lat-deg > -90 && lat+deg < 90 && theta < math.Pi/2 {
		// The longitudes a circle not holding a pole spans (the box's
		// widest point is not at the centre's latitude, see
		// http://janmatuschek.de/LatitudeLongitudeBoundingCoordinates).
		if s := math.Sin(theta) / math.Cos(lat*math.Pi/180); s < 1 {
			dlon := math.Asin(s) * 180 / math.Pi
			lo, hi := lon-dlon, lon+dlon
			switch {
			case lo < -180: // wraps over the antimeridian
				cond += " AND (" + x + ".lon >= " + b.arg(lo+360) + " OR " + x + ".lon <= " + b.arg(hi) + ")"
			case hi > 180:
				cond += " AND (" + x + ".lon >= " + b.arg(lo) + " OR " + x + ".lon <= " + b.arg(hi-360) + ")"
			default:
				cond += " AND " + x + ".lon >= " + b.arg(lo) + " AND " + x + ".lon <= " + b.arg(hi)
			}
		}
	}
	x0, y0, z0 := unitVector(lat, lon)
	chord := 2 * math.Sin(theta/2)
	// A hair of tolerance: a point exactly at the distance stays in
	// despite rounding.
	limit := chord*chord*(1+1e-12) + 1e-18
	diff := func(col string, v float64) string {
		d := "(" + x + "." + col + " - " + b.arg(v) + ")"
		return d + " * " + d
	}
	return cond + " AND " + diff("x", x0) + " + " + diff("y", y0) + " + " + diff("z", z0) + " <= " + b.arg(limit)
}
