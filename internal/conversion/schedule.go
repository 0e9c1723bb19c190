package conversion

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultSchedule sends once a day at 03:00 UTC.
const DefaultSchedule = "0 3 * * *"

// Schedule says when pending sends become due: at the next run of a cron
// expression read in UTC, at once ("immediate"), or never by itself ("off",
// leaving on-demand runs only).
type Schedule struct {
	text string
	cron cron.Schedule // nil for immediate and off
	off  bool
}

// ParseSchedule reads PRUUV_CONVERSIONS_SCHEDULE: "immediate", "off", or a
// five-field cron expression (minute hour day-of-month month day-of-week, or a
// descriptor such as @daily) evaluated in UTC.
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "immediate":
		return Schedule{text: "immediate"}, nil
	case "off":
		return Schedule{text: "off", off: true}, nil
	case "":
		return Schedule{}, fmt.Errorf("empty schedule: want a cron expression such as %q, immediate or off", DefaultSchedule)
	}
	// The expression is always UTC; a time-zone prefix would contradict that.
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return Schedule{}, fmt.Errorf("schedule %q: expressions are read in UTC; drop the time-zone prefix", s)
	}
	c, err := cron.ParseStandard(s)
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: %w (want five fields, minute hour day-of-month month day-of-week, in UTC, e.g. %q; or immediate, or off)", s, err, DefaultSchedule)
	}
	return Schedule{text: s, cron: c}, nil
}

// MustSchedule is ParseSchedule for expressions known to be valid.
func MustSchedule(s string) Schedule {
	sc, err := ParseSchedule(s)
	if err != nil {
		panic(err)
	}
	return sc
}

// Next is when a send planned at now becomes due: the schedule's next run
// after now, now itself when immediate, and false when the schedule is off.
func (s Schedule) Next(now time.Time) (time.Time, bool) {
	switch {
	case s.off:
		return time.Time{}, false
	case s.cron == nil:
		return now, true
	}
	return s.cron.Next(now.UTC()), true
}

func (s Schedule) String() string { return s.text }
