package search

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
)

// Decimal is an exact decimal number that keeps the precision it was
// written with: its value is Unscaled × 10^-Scale, so "1.50" is 150 with
// scale 2 and "1e2" is 1 with scale -2. The zero value is 0 (scale 0).
type Decimal struct {
	unscaled *big.Int
	scale    int
}

// Limits keep hostile input from building huge numbers.
const (
	maxDecimalDigits = 64
	maxDecimalScale  = 128
)

var errBadDecimal = errors.New("not a decimal number")

// ParseDecimal parses a FHIR decimal ([+-]digits[.digits][e[+-]digits]).
func ParseDecimal(s string) (Decimal, error) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[start:i]
	if intPart == "" {
		return Decimal{}, errBadDecimal
	}
	frac := ""
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[fs:i]
		if frac == "" {
			return Decimal{}, errBadDecimal
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		es := i
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		ds := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == ds || i-ds > 4 {
			return Decimal{}, errBadDecimal
		}
		e, err := strconv.Atoi(s[es:i])
		if err != nil {
			return Decimal{}, errBadDecimal
		}
		exp = e
	}
	if i != len(s) {
		return Decimal{}, errBadDecimal
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	if len(digits) > maxDecimalDigits {
		return Decimal{}, errors.New("too many digits")
	}
	scale := len(frac) - exp
	if scale > maxDecimalScale || scale < -maxDecimalScale {
		return Decimal{}, errors.New("exponent out of range")
	}
	u := new(big.Int)
	if digits != "" {
		u.SetString(digits, 10)
	}
	if neg {
		u.Neg(u)
	}
	return Decimal{unscaled: u, scale: scale}, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (d Decimal) int() *big.Int {
	if d.unscaled == nil {
		return new(big.Int)
	}
	return d.unscaled
}

// Unscaled returns a copy of the unscaled integer.
func (d Decimal) Unscaled() *big.Int { return new(big.Int).Set(d.int()) }

// Scale returns the number of decimal places (negative for "1e2" forms).
func (d Decimal) Scale() int { return d.scale }

// Sign returns -1, 0 or +1.
func (d Decimal) Sign() int { return d.int().Sign() }

// Rat returns the exact value.
func (d Decimal) Rat() *big.Rat {
	r := new(big.Rat).SetInt(d.int())
	if d.scale == 0 {
		return r
	}
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(d.scale))), nil)
	if d.scale > 0 {
		return r.Quo(r, new(big.Rat).SetInt(p))
	}
	return r.Mul(r, new(big.Rat).SetInt(p))
}

// Float64 returns the nearest float64 (for backends that store REAL).
func (d Decimal) Float64() float64 {
	f, _ := d.Rat().Float64()
	return f
}

// Cmp compares the values of d and o (precision ignored).
func (d Decimal) Cmp(o Decimal) int { return d.Rat().Cmp(o.Rat()) }

// String returns the value in plain notation keeping the precision:
// "1.50", "-0.05", "100" (for 1e2).
func (d Decimal) String() string {
	u := d.int()
	neg := u.Sign() < 0
	digits := new(big.Int).Abs(u).String()
	var s string
	switch {
	case d.scale <= 0:
		s = digits
		if digits != "0" {
			s += strings.Repeat("0", -d.scale)
		}
	default:
		if len(digits) <= d.scale {
			digits = strings.Repeat("0", d.scale-len(digits)+1) + digits
		}
		p := len(digits) - d.scale
		s = digits[:p] + "." + digits[p:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// precisionRange returns [d - h, d + h) where h is half a unit of the last
// given digit (FHIR's implicit precision: 100 → [99.5, 100.5)).
func (d Decimal) precisionRange() (Decimal, Decimal) {
	ten := new(big.Int).Mul(d.int(), big.NewInt(10))
	five := big.NewInt(5)
	return Decimal{new(big.Int).Sub(ten, five), d.scale + 1},
		Decimal{new(big.Int).Add(ten, five), d.scale + 1}
}

// approxRange returns [d - 10%|d|, d + 10%|d|].
func (d Decimal) approxRange() (Decimal, Decimal) {
	ten := new(big.Int).Mul(d.int(), big.NewInt(10))
	a := new(big.Int).Abs(d.int())
	return Decimal{new(big.Int).Sub(ten, a), d.scale + 1},
		Decimal{new(big.Int).Add(ten, a), d.scale + 1}
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// numberValue builds a NumberValue from a prefix and a decimal.
func numberValue(raw string, p Prefix, d Decimal) NumberValue {
	lo, hi := d.precisionRange()
	if p == PrefixAp {
		alo, ahi := d.approxRange()
		if alo.Cmp(lo) < 0 {
			lo = alo
		}
		if ahi.Cmp(hi) > 0 {
			hi = ahi
		}
	}
	return NumberValue{raw: raw, Prefix: p, Value: d, Low: lo, High: hi}
}
