// Package report computes funnel reports: contacts per stage, stage-to-stage
// conversion and revenue by currency over a date range in the client's time
// zone, optionally broken down by a UTM, click-platform or demographic field,
// with a daily series. It also writes them as CSV and draws them as SVG. The
// definitions are in docs/reports.md.
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // client time zones must load on hosts without a zoneinfo database

	"github.com/pruuv/pruuv/internal/store"
)

// Fields are the names a report can be broken down by, in display order.
var Fields = []string{
	"utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "click_platform",
	"gender", "age_range", "location_country", "location_region", "job_title", "company_size", "industry",
}

// ValidField reports whether name is one of Fields.
func ValidField(name string) bool { return slices.Contains(Fields, name) }

// Click platforms, the values of the click_platform breakdown (none is a nil
// value).
const (
	PlatformGoogle    = "google"
	PlatformMeta      = "meta"
	PlatformTikTok    = "tiktok"
	PlatformMicrosoft = "microsoft"
)

// MaxDays is the longest range a report covers.
const MaxDays = 731

// ErrInvalid means the query is wrong (a bad date range or field); the
// error's text says what to fix.
var ErrInvalid = errors.New("invalid report query")

// ErrNotFound means the funnel does not exist.
var ErrNotFound = store.ErrNotFound

// Date is a calendar day without a time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%q is not a date of the form YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// DateOf is the calendar day of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// String formats the date as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// In returns the first instant of the day in loc. Where a daylight-saving
// change skips midnight, that is the first instant that exists.
func (d Date) In(loc *time.Location) time.Time {
	t := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
	if DateOf(t).Before(d) {
		// Midnight does not exist and Go chose an instant of the day before
		// (America/Santiago, 11 September 2022): the day starts when that
		// instant's zone ends.
		if _, end := t.ZoneBounds(); !end.IsZero() {
			t = end
		}
	}
	return t
}

// AddDays returns the date n days later.
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC))
}

// days counts the days from d to e, both included.
func (d Date) days(e Date) int {
	return int(e.In(time.UTC).Sub(d.In(time.UTC)).Hours()/24) + 1
}

// Before reports whether d is earlier than e.
func (d Date) Before(e Date) bool { return d.compare(e) < 0 }

func (d Date) compare(e Date) int {
	return cmp.Or(cmp.Compare(d.Year, e.Year), cmp.Compare(d.Month, e.Month), cmp.Compare(d.Day, e.Day))
}

// MarshalText writes YYYY-MM-DD.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Query asks for one funnel's report.
type Query struct {
	FunnelID string
	From, To Date   // inclusive, in the client's time zone
	By       string // "" or one of Fields
	Source   string // "" or only events from this source (webhook, pixel, import)
}

// Stage is a funnel stage as the report shows it.
type Stage struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Position int    `json:"position"`
}

// Row is one stage's figures, for one breakdown value when the report is
// broken down.
type Row struct {
	// Value is the breakdown value; nil means the events had none (shown as
	// "(none)"). Always nil in Totals.
	Value     *string
	StageID   string
	StageName string
	Position  int
	// Contacts counts distinct references that reached the stage in the range.
	Contacts int
	// Revenue sums revenue_value in millionths per currency.
	Revenue map[string]int64
	// ConversionFromPrevious is Contacts over the previous stage's Contacts
	// for the same value; nil for the first stage or when that is 0.
	ConversionFromPrevious *float64
}

// DayRow is one stage's contacts on one local day.
type DayRow struct {
	Date     Date   `json:"date"`
	StageID  string `json:"stage_id"`
	Contacts int    `json:"contacts"`
}

// Report is a funnel report.
type Report struct {
	FunnelID   string
	FunnelName string
	ClientName string
	TimeZone   string
	From, To   Date
	By         string
	Source     string
	Stages     []Stage // in position order
	// Totals has one row per stage, whatever the breakdown.
	Totals []Row
	// Rows has one row per breakdown value and stage: values in ascending
	// order with none last, stages in position order within a value. Without
	// a breakdown it is Totals.
	Rows []Row
	// Daily has one row per day and stage, days ascending.
	Daily []DayRow
}

// Run computes the report with one pass over the range's events.
func Run(ctx context.Context, st *store.Store, q Query) (*Report, error) {
	if q.By != "" && !ValidField(q.By) {
		return nil, fmt.Errorf("%w: cannot break down by %q; use one of %s", ErrInvalid, q.By, strings.Join(Fields, ", "))
	}
	if q.To.Before(q.From) {
		return nil, fmt.Errorf("%w: the range ends (%s) before it starts (%s)", ErrInvalid, q.To, q.From)
	}
	days := q.From.days(q.To)
	if days > MaxDays {
		return nil, fmt.Errorf("%w: a report covers at most %d days", ErrInvalid, MaxDays)
	}
	f, err := st.GetReportFunnel(ctx, q.FunnelID)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(f.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("client %s has time zone %q: %w", f.ClientName, f.TimeZone, err)
	}
	r := &Report{FunnelID: f.ID, FunnelName: f.Name, ClientName: f.ClientName, TimeZone: f.TimeZone,
		From: q.From, To: q.To, By: q.By, Source: q.Source}
	ids := make([]string, len(f.Stages))
	for i, s := range f.Stages {
		r.Stages = append(r.Stages, Stage{ID: s.ID, Name: s.Name, Position: s.Position})
		ids[i] = s.ID
	}
	// bounds[i] is the first millisecond of day i; bounds[days] ends the range.
	bounds := make([]int64, days+1)
	for i := range bounds {
		bounds[i] = q.From.AddDays(i).In(loc).UnixMilli()
	}
	g, err := scan(ctx, st, store.ReportScan{StageIDs: ids, By: q.By, Source: q.Source}, bounds, f.Currency)
	if err != nil {
		return nil, err
	}
	if err := g.fill(r); err != nil {
		return nil, err
	}
	return r, nil
}

// scan reads the range's events in parts — contiguous slices of the range,
// one per CPU up to maxParts, read side by side on separate connections —
// and merges the parts' groups.
func scan(ctx context.Context, st *store.Store, q store.ReportScan, bounds []int64, currency string) (*groups, error) {
	n := min(runtime.GOMAXPROCS(0), maxParts)
	from, to := bounds[0], bounds[len(bounds)-1]
	seeds := [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	parts := make([]*part, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range parts {
		p := newPart(len(q.StageIDs), bounds, currency, seeds)
		// Parts are merged into the first by walking their slots, which lie
		// in the order of their probe word. Probing the first by the other
		// word makes that walk random to it; walking a table into another
		// probed the same way would pile the keys into one long run.
		p.contacts.word = min(i, 1)
		parts[i] = p
		pq := q
		pq.From, pq.To = from+(to-from)*int64(i)/int64(n), from+(to-from)*int64(i+1)/int64(n)
		pq.Expect = p.contacts.reserve
		wg.Go(func() { errs[i] = st.ScanReport(ctx, pq, p.add) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return merge(parts)
}

// maxParts caps how many connections one report reads on at once.
const maxParts = 4

// refKey identifies a reference at a stage by two independent 64-bit
// hashes. Keys without pointers keep hundreds of thousands of contacts cheap
// to collect and invisible to the garbage collector; two different
// references share a key with probability about n²/2¹²⁹ (below 10⁻²⁰ for a
// billion contacts), far below any other source of error.
type refKey [2]uint64

// contact is where one reference is counted at one stage: under the value
// and day of its earliest event in the range. Ties in time go to the smaller
// value, so the result never depends on the order rows were read in.
type contact struct {
	ref   refKey
	at    int64
	value int32 // interned in the part, then in the merged groups; 0 is none
	day   int16 // at most MaxDays
	stage int16 // funnels have at most 50 stages
}

// contactSet is an open-addressing hash set of contacts keyed by ref, with
// linear probing from the ref's word number word, already a uniform hash.
// An empty slot has ref {0, 0}, which a real reference hashes to with
// probability 2⁻¹²⁸.
type contactSet struct {
	slots []contact
	n     int
	word  int
}

// reserve sizes the set for about n contacts (the store's upper bound on the
// rows to come), so that it need not grow while they arrive.
func (cs *contactSet) reserve(n int64) {
	size := 1024
	for size < 1<<20 && int64(size)*3 < n*4 { // beyond 32 MB, let it grow as contacts come
		size *= 2
	}
	if size > len(cs.slots) && cs.n == 0 {
		cs.slots = make([]contact, size)
	}
}

// put records an event of a contact; earlier reports whether it replaced
// the contact's previous earliest event (when found).
func (cs *contactSet) put(c contact, names []string) (prev contact, found, earlier bool) {
	if 4*(cs.n+1) > 3*len(cs.slots) {
		cs.grow()
	}
	mask := uint64(len(cs.slots) - 1)
	for i := c.ref[cs.word] & mask; ; i = (i + 1) & mask {
		sl := &cs.slots[i]
		switch sl.ref {
		case refKey{}:
			*sl = c
			cs.n++
			return contact{}, false, false
		case c.ref:
			if c.at < sl.at || (c.at == sl.at && names[c.value] < names[sl.value]) {
				prev = *sl
				*sl = c
				return prev, true, true
			}
			return *sl, true, false
		}
	}
}

func (cs *contactSet) grow() {
	old := cs.slots
	cs.slots, cs.n = make([]contact, max(1024, 2*len(old))), 0
	for _, c := range old {
		if c.ref != (refKey{}) {
			cs.put(c, nil)
		}
	}
}

type revenueKey struct {
	stage, value int32
	currency     string
}

// part collects one slice of the range: its contacts, their counts by stage
// and value and by stage and day, and revenue sums. Values are interned per
// part.
type part struct {
	bounds   []int64
	currency string // the client's default, for revenue sent without one
	seeds    [2]maphash.Seed
	values   map[string]int32
	names    []string
	contacts contactSet
	counts   [][]int // [stage][value]
	daily    [][]int // [stage][day]
	revenue  map[revenueKey]int64
	curs     map[string]string
}

func newPart(stages int, bounds []int64, currency string, seeds [2]maphash.Seed) *part {
	p := &part{bounds: bounds, currency: currency, seeds: seeds, values: map[string]int32{}, names: []string{""},
		counts: make([][]int, stages), daily: make([][]int, stages), revenue: map[revenueKey]int64{}, curs: map[string]string{}}
	for s := range stages {
		p.counts[s], p.daily[s] = []int{0}, make([]int, len(bounds)-1)
	}
	return p
}

// count adds c to the contacts, moving the contact if c is its earlier
// event.
func (p *part) count(c contact) {
	prev, found, earlier := p.contacts.put(c, p.names)
	if found && !earlier {
		return
	}
	if found {
		p.counts[prev.stage][prev.value]--
		p.daily[prev.stage][prev.day]--
	}
	p.counts[c.stage][c.value]++
	p.daily[c.stage][c.day]++
}

// ErrRevenueOverflow means a revenue total does not fit in 64-bit millionths.
var ErrRevenueOverflow = errors.New("a revenue total is too large to add up exactly")

// add takes one event; the strings in e are copied if kept.
func (p *part) add(e *store.ReportRow) error {
	var v int32
	if e.HasValue {
		var ok bool
		if v, ok = p.values[e.Value]; !ok {
			name := strings.Clone(e.Value)
			v = int32(len(p.names))
			p.values[name] = v
			p.names = append(p.names, name)
			for s := range p.counts {
				p.counts[s] = append(p.counts[s], 0)
			}
		}
	}
	day, _ := slices.BinarySearch(p.bounds, e.ReceivedAt+1) // the number of day starts at or before it
	// The stage is folded into the key: the same reference at another stage
	// is another contact.
	mix := uint64(e.Stage+1) * 0x9e3779b97f4a7c15
	p.count(contact{ref: refKey{maphash.String(p.seeds[0], e.Reference) ^ mix, maphash.String(p.seeds[1], e.Reference) ^ bits.RotateLeft64(mix, 32)},
		at: e.ReceivedAt, value: v, day: int16(day - 1), stage: int16(e.Stage)})
	if e.HasRevenue {
		cur := p.currency
		if e.Currency != "" {
			var ok bool
			if cur, ok = p.curs[e.Currency]; !ok {
				cur = strings.Clone(e.Currency)
				p.curs[cur] = cur
			}
		}
		k := revenueKey{int32(e.Stage), v, cur}
		sum, ok := addMicros(p.revenue[k], e.Revenue)
		if !ok {
			return ErrRevenueOverflow
		}
		p.revenue[k] = sum
	}
	return nil
}

// addMicros adds two non-negative amounts, reporting false if the sum does
// not fit (or an amount is negative, which ingest refuses).
func addMicros(x, y int64) (int64, bool) {
	sum, carry := bits.Add64(uint64(x), uint64(y), 0)
	return int64(sum), carry == 0 && x >= 0 && y >= 0 && int64(sum) >= 0
}

// groups are the merged counts. Value 0 is none.
type groups struct {
	names   []string
	counts  [][]int // [stage][value]: contacts
	daily   [][]int // [stage][day]: contacts
	revenue map[revenueKey]int64
}

// merge adds the parts up into the first, whose value ids become the
// report's. A contact seen in several parts is counted once, where its
// earliest event is.
func merge(parts []*part) (*groups, error) {
	g := parts[0]
	for _, p := range parts[1:] {
		remap := make([]int32, len(p.names))
		for v, name := range p.names[1:] {
			gv, ok := g.values[name]
			if !ok {
				gv = int32(len(g.names))
				g.values[name] = gv
				g.names = append(g.names, name)
				for s := range g.counts {
					g.counts[s] = append(g.counts[s], 0)
				}
			}
			remap[v+1] = gv
		}
		for _, c := range p.contacts.slots {
			if c.ref != (refKey{}) {
				c.value = remap[c.value]
				g.count(c)
			}
		}
		for k, m := range p.revenue {
			k.value = remap[k.value]
			sum, ok := addMicros(g.revenue[k], m)
			if !ok {
				return nil, ErrRevenueOverflow
			}
			g.revenue[k] = sum
		}
	}
	return &groups{names: g.names, counts: g.counts, daily: g.daily, revenue: g.revenue}, nil
}

// fill builds the report's rows from the groups.
func (g *groups) fill(r *Report) error {
	nstages := len(r.Stages)
	row := func(s int, value *string, contacts int, rev map[string]int64) Row {
		if rev == nil {
			rev = map[string]int64{}
		}
		st := r.Stages[s]
		return Row{Value: value, StageID: st.ID, StageName: st.Name, Position: st.Position, Contacts: contacts, Revenue: rev}
	}
	totalRev := make([]map[string]int64, nstages)
	byValue := map[[2]int32]map[string]int64{}
	for k, m := range g.revenue {
		if totalRev[k.stage] == nil {
			totalRev[k.stage] = map[string]int64{}
		}
		sum, ok := addMicros(totalRev[k.stage][k.currency], m)
		if !ok {
			return ErrRevenueOverflow
		}
		totalRev[k.stage][k.currency] = sum
		kk := [2]int32{k.stage, k.value}
		if byValue[kk] == nil {
			byValue[kk] = map[string]int64{}
		}
		byValue[kk][k.currency] = m
	}
	for s := range nstages {
		total := 0
		for _, n := range g.counts[s] {
			total += n
		}
		r.Totals = append(r.Totals, row(s, nil, total, totalRev[s]))
	}
	conversions(r.Totals)
	if r.By == "" {
		r.Rows = r.Totals
	} else {
		// Values in ascending order, none (0) last.
		order := make([]int32, 0, len(g.names))
		for v := 1; v < len(g.names); v++ {
			order = append(order, int32(v))
		}
		slices.SortFunc(order, func(x, y int32) int { return strings.Compare(g.names[x], g.names[y]) })
		order = append(order, 0)
		for _, v := range order {
			var value *string
			if v != 0 {
				value = &g.names[v]
			}
			seen := false
			start := len(r.Rows)
			for s := range nstages {
				n := g.counts[s][v]
				rev := byValue[[2]int32{int32(s), v}]
				seen = seen || n != 0 || rev != nil
				r.Rows = append(r.Rows, row(s, value, n, rev))
			}
			if !seen {
				r.Rows = r.Rows[:start] // no events had this value, or none had no value
				continue
			}
			conversions(r.Rows[start:])
		}
	}
	for d := range r.From.days(r.To) {
		date := r.From.AddDays(d)
		for s := range nstages {
			r.Daily = append(r.Daily, DayRow{Date: date, StageID: r.Stages[s].ID, Contacts: g.daily[s][d]})
		}
	}
	return nil
}

// conversions fills ConversionFromPrevious in one value's rows, which are in
// stage order.
func conversions(rows []Row) {
	for i := 1; i < len(rows); i++ {
		if prev := rows[i-1].Contacts; prev > 0 {
			c := float64(rows[i].Contacts) / float64(prev)
			rows[i].ConversionFromPrevious = &c
		}
	}
}
