package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"modernc.org/sqlite"
)

// ReportFunnel is a funnel as a report needs it: its client's time zone and
// default currency, and its stages in position order.
type ReportFunnel struct {
	ID         string
	Name       string
	ClientID   string
	ClientName string
	TimeZone   string // IANA name, e.g. Europe/London
	Currency   string // the client's default currency
	Stages     []Stage
}

// GetReportFunnel returns a funnel with its client's settings and its
// stages, or ErrNotFound.
func (s *Store) GetReportFunnel(ctx context.Context, id string) (ReportFunnel, error) {
	var f ReportFunnel
	err := s.r.QueryRowContext(ctx, `SELECT f.id, f.name, c.id, c.name, c.time_zone, c.currency
		FROM funnels f JOIN clients c ON c.id = f.client_id WHERE f.id = $1`, id).
		Scan(&f.ID, &f.Name, &f.ClientID, &f.ClientName, &f.TimeZone, &f.Currency)
	if err != nil {
		return ReportFunnel{}, s.wrap(err, "funnel "+id)
	}
	f.Stages, err = queryList(ctx, s, "stages of funnel "+id, scanStage, stageSelect+" WHERE s.funnel_id = $1 ORDER BY s.position", id)
	if err != nil {
		return ReportFunnel{}, err
	}
	return f, nil
}

// ReportBreakdowns maps each field a report can be broken down by to the SQL
// expression giving an event's value; NULL means "none". click_platform is
// derived from the click ids, in this order of precedence when an event has
// several: Google (gclid, gbraid, wbraid), Meta (fbc — a click; fbp alone is
// only a browser id), TikTok (ttclid), Microsoft (msclkid).
var ReportBreakdowns = map[string]string{
	"utm_source":       "utm_source",
	"utm_medium":       "utm_medium",
	"utm_campaign":     "utm_campaign",
	"utm_content":      "utm_content",
	"utm_term":         "utm_term",
	"gender":           "gender",
	"age_range":        "age_range",
	"location_country": "location_country",
	"location_region":  "location_region",
	"job_title":        "job_title",
	"company_size":     "company_size",
	"industry":         "industry",
	"click_platform": `CASE WHEN gclid IS NOT NULL OR gbraid IS NOT NULL OR wbraid IS NOT NULL THEN 'google'
		WHEN fbc IS NOT NULL THEN 'meta' WHEN ttclid IS NOT NULL THEN 'tiktok'
		WHEN msclkid IS NOT NULL THEN 'microsoft' END`,
}

// ReportScan selects the events a report reads.
type ReportScan struct {
	StageIDs []string
	From, To int64  // received_at in [From, To), Unix ms
	By       string // "" or a key of ReportBreakdowns
	Source   string // "" or only events of this source
	// Expect, if set, is told an upper bound on the number of rows before
	// the first arrives (SQLite only), so the sink can size its tables.
	Expect func(rows int64)
}

// ReportRow is one event as a report sees it. The strings are only valid
// during the call to the sink: a sink that keeps one must copy it
// (strings.Clone), because on SQLite they point into the database's buffers.
type ReportRow struct {
	Stage      int // index into ReportScan.StageIDs
	ReceivedAt int64
	Value      string // the breakdown value; meaningful when HasValue
	HasValue   bool
	Reference  string
	Currency   string // "" when the event has none
	Revenue    int64  // micros; meaningful when HasRevenue
	HasRevenue bool
}

// ScanReport feeds every selected event to sink, in no guaranteed order, and
// stops at the first error sink returns.
//
// The events are found by a range on the primary key: event ids are UUIDv7
// whose leading 48 bits are the received_at millisecond (ingest makes both
// from one clock reading), so an id range is a time range and no other
// index is needed. received_at itself decides which events count.
//
// On SQLite, the events go to sink from inside the query through an
// aggregate function: reading rows one by one through database/sql, or
// grouping them in SQL (which sorts), costs several times more.
func (s *Store) ScanReport(ctx context.Context, q ReportScan, sink func(*ReportRow) error) error {
	expr := "NULL"
	if q.By != "" {
		e, ok := ReportBreakdowns[q.By]
		if !ok {
			return fmt.Errorf("report: unknown breakdown %q", q.By)
		}
		expr = e
	}
	if len(q.StageIDs) == 0 || q.From >= q.To {
		return nil
	}
	// $1 and $2 are left for the dialect's way of narrowing the table.
	args := []any{nil, nil, q.From, q.To}
	var where strings.Builder
	where.WriteString("received_at >= $3 AND received_at < $4")
	if s.Postgres() {
		where.WriteString(" AND stage_id = ANY($5)")
		args = append(args, q.StageIDs)
	} else {
		// "+" keeps SQLite from the dedup index, which would visit every
		// event the stages ever had.
		where.WriteString(" AND +stage_id IN (")
		for i, id := range q.StageIDs {
			if i > 0 {
				where.WriteString(", ")
			}
			args = append(args, id)
			fmt.Fprintf(&where, "$%d", len(args))
		}
		where.WriteString(")")
	}
	if q.Source != "" {
		args = append(args, q.Source)
		fmt.Fprintf(&where, " AND source = $%d", len(args))
	}
	cols := "stage_id, received_at, " + expr + ", reference, currency, revenue_micros"
	if s.Postgres() {
		args[0], args[1] = idBound(q.From), idBound(q.To)
		return s.scanReportRows(ctx, "SELECT "+cols+" FROM events WHERE id >= $1 AND id < $2 AND "+where.String(), args, q.StageIDs, sink)
	}
	return s.scanReportSQLite(ctx, q, cols, where.String(), args, sink)
}

// idBound is the smallest UUIDv7 text of millisecond ms: its 48-bit time as
// hex, "xxxxxxxx-xxxx". Every id of that millisecond or later sorts at or
// after it, bytewise and in collations that compare hex digits in order.
func idBound(ms int64) string {
	u := uint64(ms)
	return fmt.Sprintf("%08x-%04x", u>>16, u&0xffff)
}

func stageIndex(ids []string) map[string]int {
	m := make(map[string]int, len(ids))
	for i, id := range ids {
		m[id] = i
	}
	return m
}

func (s *Store) scanReportRows(ctx context.Context, query string, args []any, stageIDs []string, sink func(*ReportRow) error) error {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return s.wrap(err, "report")
	}
	defer rows.Close()
	idx := stageIndex(stageIDs)
	var r ReportRow
	var stage, value, ref, cur sql.RawBytes
	var rev sql.NullInt64
	for rows.Next() {
		if err := rows.Scan(&stage, &r.ReceivedAt, &value, &ref, &cur, &rev); err != nil {
			return s.wrap(err, "report")
		}
		r.Stage = idx[string(stage)]
		r.Value, r.HasValue = string(value), value != nil
		r.Reference, r.Currency = string(ref), string(cur)
		r.Revenue, r.HasRevenue = rev.Int64, rev.Valid
		if err := sink(&r); err != nil {
			return err
		}
	}
	return s.wrap(rows.Err(), "report")
}

// The SQLite aggregate pruuv_report_scan(handle, stage_id, received_at,
// value, reference, currency, revenue_micros) hands each row to the sink
// registered under handle. Functions are registered with the driver for
// every connection opened afterwards, so this happens once, before the
// first SQLite database is opened.
var (
	registerScan sync.Once
	scanSinks    sync.Map // int64 handle → *scanState
	scanHandles  atomic.Int64
)

type scanState struct {
	idx  map[string]int
	sink func(*ReportRow) error
	row  ReportRow
	// err is the sink's error: SQLite keeps only the text of an error
	// Step returns, so ScanReport returns this one instead.
	err error
}

func registerReportScan() error {
	var err error
	registerScan.Do(func() {
		err = sqlite.RegisterFunction("pruuv_report_scan", &sqlite.FunctionImpl{
			NArgs: 7,
			// The strings are read during Step and copied by the sink if kept.
			VolatileArgs: true,
			MakeAggregate: func(sqlite.FunctionContext) (sqlite.AggregateFunction, error) {
				return &scanAggregate{}, nil
			},
		})
	})
	return err
}

type scanAggregate struct{ st *scanState }

func (a *scanAggregate) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	if a.st == nil {
		h, _ := args[0].(int64)
		v, ok := scanSinks.Load(h)
		if !ok {
			return errors.New("pruuv_report_scan: no sink registered under this handle")
		}
		a.st = v.(*scanState)
	}
	r := &a.st.row
	stage, _ := args[1].(string)
	i, ok := a.st.idx[stage]
	if !ok {
		return fmt.Errorf("pruuv_report_scan: event of stage %q not asked for", stage)
	}
	r.Stage = i
	r.ReceivedAt, _ = args[2].(int64)
	r.Value, r.HasValue = args[3].(string)
	r.Reference, _ = args[4].(string)
	r.Currency, _ = args[5].(string)
	r.Revenue, r.HasRevenue = args[6].(int64)
	if err := a.st.sink(r); err != nil {
		a.st.err = err
		return err
	}
	return nil
}

func (a *scanAggregate) WindowInverse(*sqlite.FunctionContext, []driver.Value) error {
	return errors.New("pruuv_report_scan is not a window function")
}

func (a *scanAggregate) WindowValue(*sqlite.FunctionContext) (driver.Value, error) { return nil, nil }

func (a *scanAggregate) Final(*sqlite.FunctionContext) {}

// scanReportSQLite first finds the span of rowids of the range's events
// through the id index, then reads that span of the table in order: a
// sequential read instead of one table lookup per event. Events are inserted
// in arrival order, so the span holds little else, and the conditions drop
// whatever it does. Both statements read one snapshot.
func (s *Store) scanReportSQLite(ctx context.Context, q ReportScan, cols, where string, args []any, sink func(*ReportRow) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.wrap(err, "report")
	}
	defer tx.Rollback()
	var lo, hi sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT min(rowid), max(rowid) FROM events WHERE id >= $1 AND id < $2",
		idBound(q.From), idBound(q.To)).Scan(&lo, &hi); err != nil {
		return s.wrap(err, "report")
	}
	if !lo.Valid {
		return nil
	}
	if q.Expect != nil {
		q.Expect(hi.Int64 - lo.Int64 + 1)
	}
	h := scanHandles.Add(1)
	state := &scanState{idx: stageIndex(q.StageIDs), sink: sink}
	scanSinks.Store(h, state)
	defer scanSinks.Delete(h)
	args[0], args[1] = lo.Int64, hi.Int64
	args = append(args, h)
	query := fmt.Sprintf("SELECT pruuv_report_scan($%d, %s) FROM events WHERE rowid >= $1 AND rowid <= $2 AND %s", len(args), cols, where)
	var ignored any
	if err := tx.QueryRowContext(ctx, query, args...).Scan(&ignored); err != nil {
		if state.err != nil {
			return state.err
		}
		return s.wrap(err, "report")
	}
	return nil
}
