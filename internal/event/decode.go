package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ValidationError lists what is wrong with a payload, keyed by field name; a
// body that is not a JSON object is reported under "body".
type ValidationError struct {
	Details map[string][]string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("validation failed: %v", e.Details)
}

func (e *ValidationError) add(field, msg string) {
	if e.Details == nil {
		e.Details = make(map[string][]string)
	}
	e.Details[field] = append(e.Details[field], msg)
}

// MaxRevenue is the largest revenue_value accepted, in currency units.
const MaxRevenue = 1_000_000_000_000

// minTime is the earliest timestamp accepted: nothing was clicked before it,
// and it keeps the zero time free to mean "absent".
var minTime = time.Unix(0, 0)

const msgRepeated = "is given more than once"

// MaxFuture is how far ahead of the server clock a timestamp may be, allowing
// for senders whose clocks run fast.
const MaxFuture = 24 * time.Hour

// Decode parses and validates a payload against Schema. It is strict where
// encoding/json v1 is lenient: the body must be valid UTF-8 and exactly one JSON
// object, names match exactly, and a documented field given twice is an error.
// Unknown fields are ignored. Every problem found is reported, not just the first.
func Decode(body []byte, now time.Time) (Fields, error) {
	return decode(body, now, nil)
}

// DecodeBrowser is Decode for payloads written in a visitor's browser, the
// Pixel's. Their click_timestamp comes from the visitor's clock, which can be
// far wrong, and that is not the site's fault: a well-formed click_timestamp
// more than MaxFuture ahead of now, or before 1970, is dropped instead of
// failing the event, and dropped says so. A malformed one is still an error,
// as is any other field: the script only writes well-formed times, so a
// malformed one came from the page's own code.
func DecodeBrowser(body []byte, now time.Time) (f Fields, dropped bool, err error) {
	f, err = decode(body, now, &dropped)
	return f, dropped && err == nil, err
}

// decode is Decode; a non-nil dropped asks for DecodeBrowser's leniency.
func decode(body []byte, now time.Time, dropped *bool) (Fields, error) {
	var f Fields
	verr := &ValidationError{}
	switch {
	case skipWS(body, 0) == len(body): // only JSON's own whitespace counts as empty
		verr.add("body", "is empty; send a JSON object")
		return f, verr
	case !utf8.Valid(body):
		verr.add("body", "must be valid UTF-8")
		return f, verr
	case !json.Valid(body):
		verr.add("body", "is not valid JSON: "+syntaxMessage(body))
		return f, verr
	}
	i := skipWS(body, 0)
	if body[i] != '{' {
		verr.add("body", "must be a JSON object")
		return f, verr
	}
	var seen uint64
	i = skipWS(body, i+1)
	for body[i] != '}' {
		kEnd, esc := scanString(body, i)
		key := unquote(body[i:kEnd], esc)
		i = skipWS(body, kEnd)
		i = skipWS(body, i+1) // ':'
		vEnd := skipValue(body, i)
		if idx, ok := inputIndex[key]; ok {
			if seen&(1<<idx) != 0 {
				if !slices.Contains(verr.Details[key], msgRepeated) {
					verr.add(key, msgRepeated)
				}
			} else {
				seen |= 1 << idx
				setField(&f, Inputs[idx], body[i:vEnd], now, verr, dropped)
			}
		}
		i = skipWS(body, vEnd)
		if body[i] == ',' {
			i = skipWS(body, i+1)
		}
	}
	if f.Reference == "" && verr.Details["reference"] == nil {
		verr.add("reference", "is required")
	}
	if verr.Details != nil {
		return Fields{}, verr
	}
	return f, nil
}

// setField decodes one field into f. With a non-nil dropped, a
// click_timestamp out of range is skipped and *dropped set (DecodeBrowser).
func setField(f *Fields, fd Field, raw []byte, now time.Time, verr *ValidationError, dropped *bool) {
	if string(raw) == "null" {
		return
	}
	if fd.kind == kindMoney {
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			verr.add(fd.Name, "must be a number")
			return
		}
		m, err := parseMicros(raw)
		if err != nil {
			verr.add(fd.Name, err.Error())
			return
		}
		f.HasRevenue, f.RevenueMicros = true, m
		return
	}
	if raw[0] != '"' {
		verr.add(fd.Name, "must be a string")
		return
	}
	v := unquote(raw, strings.IndexByte(string(raw), '\\') >= 0)
	switch fd.kind {
	case kindString, kindIP, kindURL, kindEmail, kindPhone:
		switch {
		case v == "" && fd.Name == "reference":
			verr.add(fd.Name, "must not be empty")
		case v == "":
		case len(v) > fd.max:
			verr.add(fd.Name, fmt.Sprintf("must be at most %d bytes", fd.max))
		case hasControl(v):
			verr.add(fd.Name, "must not contain control characters")
		default:
			if err := setChecked(f, fd, v); err != nil {
				verr.add(fd.Name, err.Error())
			}
		}
	case kindCurrency:
		if v == "" {
			return
		}
		if !ValidCurrency(v) {
			verr.add(fd.Name, "must be an ISO 4217 currency code, e.g. GBP")
			return
		}
		*fd.str(f) = strings.ToUpper(v)
	case kindTime:
		if v == "" {
			return
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || len(v) < len("2006-01-02T15:04:05Z") || v[10] != 'T' || !offsetValid(t) {
			verr.add(fd.Name, "must be an ISO 8601 date-time with a time zone offset or Z, e.g. 2026-03-01T14:30:00Z")
			return
		}
		if dropped != nil && fd.Name == "click_timestamp" && (t.Before(minTime) || t.After(now.Add(MaxFuture))) {
			*dropped = true
			return
		}
		if t.Before(minTime) {
			verr.add(fd.Name, "must not be before 1970")
			return
		}
		if t.After(now.Add(MaxFuture)) {
			verr.add(fd.Name, "must not be in the future")
			return
		}
		*fd.tim(f) = t
	}
}

// setChecked stores a string field, checking and converting the kinds that
// have a format of their own.
func setChecked(f *Fields, fd Field, v string) error {
	var err error
	switch fd.kind {
	case kindEmail:
		return setEmail(f, v)
	case kindPhone:
		return setPhone(f, v)
	case kindIP:
		v, err = checkIP(v)
	case kindURL:
		v, err = checkURL(v)
	}
	if err == nil {
		*fd.str(f) = v
	}
	return err
}

// offsetValid rejects the offsets ±24:00 that time.Parse lets through but RFC
// 3339's time-hour (00-23) does not.
func offsetValid(t time.Time) bool {
	_, off := t.Zone()
	return off > -24*3600 && off < 24*3600
}

// hasControl reports C0 controls, DEL and the C1 controls U+0080–U+009F (NEL
// among them), which break log lines and CSV exports just as well.
func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// syntaxMessage describes why json.Valid refused body. It runs only on the error
// path, so the cost of a second parse does not matter.
func syntaxMessage(body []byte) string {
	var v json.RawMessage
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	if err != nil {
		return err.Error()
	}
	return "syntax error"
}

// The scanners below walk a body that json.Valid has already accepted, so they
// only need to find where tokens end, not to check them.

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string starting at b[i] == '"' and
// whether it contains escapes.
func scanString(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
	return len(b), esc
}

func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := scanString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := scanString(b, j)
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[j])) {
			j++
		}
		return j
	}
}

func unquote(raw []byte, esc bool) string {
	if !esc {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s) // raw is a valid JSON string: json.Valid checked it
	return s
}

var errNotNegative = errors.New("must not be negative")
var errTooLarge = fmt.Errorf("must be at most %d", MaxRevenue)

// parseMicros converts a JSON number literal to millionths exactly, rounding
// half away from zero beyond the sixth decimal place. It never builds huge
// intermediate values, so "1e999999999" costs as little as "1".
func parseMicros(raw []byte) (int64, error) {
	lit := string(raw)
	neg := strings.HasPrefix(lit, "-")
	lit = strings.TrimPrefix(lit, "-")
	mant, exp := lit, 0
	if k := strings.IndexAny(lit, "eE"); k >= 0 {
		mant = lit[:k]
		e := lit[k+1:]
		eneg := strings.HasPrefix(e, "-")
		e = strings.TrimLeft(e, "+-")
		// Saturate: beyond the literal's own length plus an int64's 19 digits,
		// any exponent gives "too large" or 0 alike, and none can overflow.
		limit := len(lit) + 20
		for _, c := range e {
			exp = exp*10 + int(c-'0')
			if exp > limit {
				exp = limit
				break
			}
		}
		if eneg {
			exp = -exp
		}
	}
	digits := mant
	if k := strings.IndexByte(mant, '.'); k >= 0 {
		digits = mant[:k] + mant[k+1:]
		exp -= len(mant) - k - 1
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, nil
	}
	if neg {
		return 0, errNotNegative
	}
	exp += 6 // to micros
	if exp >= 0 {
		if len(digits)+exp > 19 {
			return 0, errTooLarge
		}
		digits += strings.Repeat("0", exp)
		exp = 0
	}
	roundUp := false
	if exp < 0 {
		cut := len(digits) + exp // digits kept
		if cut < 0 {
			return 0, nil
		}
		roundUp = digits[cut] >= '5'
		digits = digits[:cut]
	}
	if len(digits) > 19 {
		return 0, errTooLarge
	}
	var m uint64
	for i := 0; i < len(digits); i++ {
		m = m*10 + uint64(digits[i]-'0')
	}
	if roundUp {
		m++
	}
	if m > MaxRevenue*1_000_000 {
		return 0, errTooLarge
	}
	return int64(m), nil
}
