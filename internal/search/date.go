package search

import (
	"errors"
	"time"
)

var errBadDate = errors.New("not a valid FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm])")

// parseDateRange parses a FHIR search date/dateTime/instant and returns the
// half-open UTC range [low, high) its precision implies. Values without a
// time zone are read in loc. A space where the zone sign belongs is read
// as '+' (an unencoded '+' in a query string arrives as a space).
func parseDateRange(s string, loc *time.Location) (low, high time.Time, prec DatePrecision, err error) {
	p := dateScanner{s: s}
	year, ok := p.digits(4)
	if !ok || year < 1 {
		return low, high, 0, errBadDate
	}
	month, day := 1, 1
	hour, minute, sec, nanos := 0, 0, 0, 0
	fracDigits := 0
	prec = PrecisionYear
	zone := loc
	if p.eat('-') {
		if month, ok = p.digits(2); !ok || month < 1 || month > 12 {
			return low, high, 0, errBadDate
		}
		prec = PrecisionMonth
		if p.eat('-') {
			if day, ok = p.digits(2); !ok || day < 1 || day > daysIn(year, month) {
				return low, high, 0, errBadDate
			}
			prec = PrecisionDay
			if p.eat('T') {
				if hour, ok = p.digits(2); !ok || hour > 23 || !p.eat(':') {
					return low, high, 0, errBadDate
				}
				if minute, ok = p.digits(2); !ok || minute > 59 {
					return low, high, 0, errBadDate
				}
				prec = PrecisionMinute
				if p.eat(':') {
					if sec, ok = p.digits(2); !ok || sec > 59 {
						return low, high, 0, errBadDate
					}
					prec = PrecisionSecond
					if p.eat('.') {
						start := p.i
						for p.i < len(p.s) && isDigit(p.s[p.i]) {
							p.i++
						}
						fracDigits = p.i - start
						if fracDigits == 0 || fracDigits > 9 {
							return low, high, 0, errBadDate
						}
						n := 0
						for _, c := range p.s[start:p.i] {
							n = n*10 + int(c-'0')
						}
						for range 9 - fracDigits {
							n *= 10
						}
						nanos = n
						prec = PrecisionFraction
					}
				}
				if z, zok := p.zone(); zok {
					zone = z
				} else if p.i < len(p.s) {
					return low, high, 0, errBadDate
				}
			}
		}
	}
	if p.i != len(p.s) {
		return low, high, 0, errBadDate
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, zone)
	var end time.Time
	switch prec {
	case PrecisionYear:
		end = t.AddDate(1, 0, 0)
	case PrecisionMonth:
		end = t.AddDate(0, 1, 0)
	case PrecisionDay:
		end = t.AddDate(0, 0, 1)
	case PrecisionMinute:
		end = t.Add(time.Minute)
	case PrecisionSecond:
		end = t.Add(time.Second)
	default:
		step := time.Duration(1)
		for range 9 - fracDigits {
			step *= 10
		}
		end = t.Add(step)
	}
	return t.UTC(), end.UTC(), prec, nil
}

// approxDates widens [low, high) by 10% of the distance between now and
// the range, at least one day on each side (FHIR leaves "ap" to the
// server and recommends 10% of the gap to now).
func approxDates(low, high, now time.Time) (time.Time, time.Time) {
	var gap time.Duration
	switch {
	case now.Before(low):
		gap = low.Sub(now)
	case now.After(high):
		gap = now.Sub(high)
	}
	w := gap / 10
	if w < 24*time.Hour {
		w = 24 * time.Hour
	}
	return low.Add(-w), high.Add(w)
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

type dateScanner struct {
	s string
	i int
}

func (p *dateScanner) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *dateScanner) digits(n int) (int, bool) {
	if p.i+n > len(p.s) {
		return 0, false
	}
	v := 0
	for k := 0; k < n; k++ {
		c := p.s[p.i+k]
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	p.i += n
	return v, true
}

// zone reads Z, ±hh:mm or " hh:mm" at the end of the value.
func (p *dateScanner) zone() (*time.Location, bool) {
	if p.i >= len(p.s) {
		return nil, false
	}
	if p.s[p.i] == 'Z' && p.i+1 == len(p.s) {
		p.i++
		return time.UTC, true
	}
	sign := 1
	switch p.s[p.i] {
	case '+', ' ':
	case '-':
		sign = -1
	default:
		return nil, false
	}
	save := p.i
	p.i++
	h, ok := p.digits(2)
	if !ok || h > 14 || !p.eat(':') {
		p.i = save
		return nil, false
	}
	m, ok := p.digits(2)
	if !ok || m > 59 || p.i != len(p.s) {
		p.i = save
		return nil, false
	}
	off := sign * (h*3600 + m*60)
	if off == 0 {
		return time.UTC, true
	}
	return time.FixedZone("", off), true
}
