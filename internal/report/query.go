package report

import (
	"fmt"
	"strings"
	"time"
)

// Sources are the values Query.Source takes besides "" (every source).
var Sources = []string{"webhook", "pixel", "import"}

// QueryError is a report parameter that cannot be used: Field names it as
// the dashboard and the admin API take it (from, to, by, source) and
// Message says what to fix. It matches ErrInvalid.
type QueryError struct{ Field, Message string }

func (e *QueryError) Error() string { return e.Field + " " + e.Message }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *QueryError) Is(target error) bool { return target == ErrInvalid }

// ParseQuery reads a report's parameters as text, the way the dashboard's
// form and the admin API take them: from and to as YYYY-MM-DD (both
// required), by empty or one of Fields, source empty or one of Sources. It
// checks everything Run would refuse, so Run then fails only on the
// funnel.
func ParseQuery(funnelID, from, to, by, source string) (Query, error) {
	q := Query{FunnelID: funnelID, By: by, Source: source}
	var err error
	if q.From, err = ParseDate(from); err != nil {
		return q, &QueryError{"from", "must be a date of the form YYYY-MM-DD"}
	}
	if q.To, err = ParseDate(to); err != nil {
		return q, &QueryError{"to", "must be a date of the form YYYY-MM-DD"}
	}
	if q.To.Before(q.From) {
		return q, &QueryError{"to", fmt.Sprintf("(%s) must not be before from (%s)", q.To, q.From)}
	}
	if q.From.days(q.To) > MaxDays {
		return q, &QueryError{"to", fmt.Sprintf("must be at most %d days after from", MaxDays-1)}
	}
	if by != "" && !ValidField(by) {
		return q, &QueryError{"by", "must be one of " + strings.Join(Fields, ", ")}
	}
	switch source {
	case "", "webhook", "pixel", "import":
	default:
		return q, &QueryError{"source", "must be one of " + strings.Join(Sources, ", ")}
	}
	return q, nil
}

// LastDays is the default range of a report: the n days up to and
// including today in loc.
func LastDays(now time.Time, loc *time.Location, n int) (from, to Date) {
	to = DateOf(now.In(loc))
	return to.AddDays(1 - n), to
}
