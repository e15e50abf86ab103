package index

import (
	"strconv"
	"time"
)

// DateRange returns the range of instants a FHIR date, dateTime or instant
// value covers at its precision: "2024" → [2024-01-01, 2025-01-01),
// "2024-05-01T10:00:00Z" → one second, "…10:00:00.250Z" → one millisecond.
// High is exclusive; both are UTC. Values without a time zone (dates and
// zone-less dateTimes) are taken as UTC.
func DateRange(s string) (low, high time.Time, ok bool) {
	// Year
	if len(s) < 4 {
		return time.Time{}, time.Time{}, false
	}
	year, ok := digits(s[0:4])
	if !ok {
		return
	}
	if len(s) == 4 {
		low = time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
		return low, low.AddDate(1, 0, 0), true
	}
	if len(s) < 7 || s[4] != '-' {
		return time.Time{}, time.Time{}, false
	}
	month, ok := digits(s[5:7])
	if !ok || month < 1 || month > 12 {
		return time.Time{}, time.Time{}, false
	}
	if len(s) == 7 {
		low = time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC)
		return low, low.AddDate(0, 1, 0), true
	}
	if len(s) < 10 || s[7] != '-' {
		return time.Time{}, time.Time{}, false
	}
	day, ok := digits(s[8:10])
	if !ok || day < 1 || day > daysIn(year, month) {
		return time.Time{}, time.Time{}, false
	}
	if len(s) == 10 {
		low = time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
		return low, low.AddDate(0, 0, 1), true
	}
	if s[10] != 'T' {
		return time.Time{}, time.Time{}, false
	}
	rest := s[11:]
	// hh:mm[:ss[.fff]] then Z or ±hh:mm (optional).
	if len(rest) < 5 || rest[2] != ':' {
		return time.Time{}, time.Time{}, false
	}
	hh, ok1 := digits(rest[0:2])
	mm, ok2 := digits(rest[3:5])
	if !ok1 || !ok2 || hh > 23 || mm > 59 {
		return time.Time{}, time.Time{}, false
	}
	rest = rest[5:]
	ss, nanos, step := 0, 0, time.Minute
	if len(rest) > 0 && rest[0] == ':' {
		if len(rest) < 3 {
			return time.Time{}, time.Time{}, false
		}
		var ok bool
		ss, ok = digits(rest[1:3])
		if !ok || ss > 60 {
			return time.Time{}, time.Time{}, false
		}
		if ss == 60 { // leap second: clamp
			ss = 59
		}
		step = time.Second
		rest = rest[3:]
		if len(rest) > 0 && rest[0] == '.' {
			j := 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			frac := rest[1:j]
			if frac == "" {
				return time.Time{}, time.Time{}, false
			}
			if len(frac) > 9 {
				frac = frac[:9]
			}
			f, _ := strconv.Atoi(frac)
			step = time.Second
			for i := 0; i < len(frac); i++ {
				step /= 10
			}
			for i := len(frac); i < 9; i++ {
				f *= 10
			}
			nanos = f
			rest = rest[j:]
		}
	}
	loc := time.UTC
	switch {
	case rest == "" || rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(rest[1:3])
		om, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || oh > 14 || om > 59 {
			return time.Time{}, time.Time{}, false
		}
		off := oh*3600 + om*60
		if rest[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	default:
		return time.Time{}, time.Time{}, false
	}
	low = time.Date(year, time.Month(month), day, hh, mm, ss, nanos, loc).UTC()
	return low, low.Add(step), true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month+1), 0, 0, 0, 0, 0, time.UTC).Day()
}
