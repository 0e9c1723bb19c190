package report_test

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// The benchmark's dataset: one client in Europe/London with one funnel of 20
// stages, 200 campaigns and exactly benchEvents events spread evenly over
// benchDays days ending at benchEnd. Contacts enter at stage 1 and go on to
// the next stage with probability benchContinue, so later stages hold fewer
// events; 3% of events are re-sent for the same contact and stage minutes to
// days later (past the 60 s dedup window), so "contacts" and "events" differ.
const (
	benchEvents   = 1_000_000
	benchStages   = 20
	benchCampaign = 200
	benchDays     = 90
	benchContinue = 0.85
	benchResend   = 0.03
	// benchVersion names the cached SQLite file; change it when the dataset
	// or the schema it is built on changes.
	benchVersion = "v1"
)

var benchEnd = time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC) // a DST change (29 March) inside the last 30 days

type benchEvent struct {
	at       int64
	stage    int
	contact  int
	campaign int
	ad       int
	revenue  int64 // micros; 0 = none
	currency string
}

// benchData generates the events in arrival order, deterministically.
func benchData() []benchEvent {
	r := rand.New(rand.NewPCG(1, 2))
	start := benchEnd.Add(-benchDays * 24 * time.Hour).UnixMilli()
	span := int64(benchDays * 24 * time.Hour / time.Millisecond)
	end := start + span
	out := make([]benchEvent, 0, benchEvents+benchEvents/10)
	for contact := 0; len(out) < benchEvents; contact++ {
		// Contacts cluster on campaigns unevenly, as ad spend does.
		campaign := int(float64(benchCampaign) * r.Float64() * r.Float64())
		ad := r.IntN(5)
		t := start + r.Int64N(span)
		for stage := range benchStages {
			if stage > 0 {
				if r.Float64() > benchContinue {
					break
				}
				t += r.Int64N(int64(36 * time.Hour / time.Millisecond))
			}
			if t >= end {
				break // contacts near the end have not got further yet
			}
			e := benchEvent{at: t, stage: stage, contact: contact, campaign: campaign, ad: ad}
			if stage >= benchStages-6 {
				e.revenue = (1000 + r.Int64N(500_000)) * 10_000 // £10.00 to £5,010.00
				e.currency = []string{"GBP", "GBP", "GBP", "EUR", "USD"}[r.IntN(5)]
			}
			out = append(out, e)
			if again := e.at + 120_000 + r.Int64N(int64(48*time.Hour/time.Millisecond)); r.Float64() < benchResend && again < end {
				e.at = again
				out = append(out, e)
			}
		}
	}
	out = out[:benchEvents]
	slices.SortStableFunc(out, func(a, b benchEvent) int { return cmp.Compare(a.at, b.at) })
	return out
}

var (
	benchSources = []string{"google", "facebook", "tiktok", "bing", "newsletter"}
	benchMediums = []string{"cpc", "paid_social", "paid_social", "cpc", "email"}
	benchTerms   = []string{"crm software", "lead tracking", "sales pipeline", "", "attribution"}
	benchGenders = []string{"female", "male", "", "female", "male", "non-binary"}
	benchAges    = []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+", ""}
	benchCountry = []string{"GB", "GB", "GB", "IE", "FR", "DE", "US", "ES", "NL", ""}
	benchSize    = []string{"1-10", "11-50", "51-200", "201-1000", "1000+"}
	benchInds    = []string{"software", "retail", "finance", "health", "education", "manufacturing", "media", ""}
	benchJobs    = []string{"founder", "marketing manager", "sales director", "engineer", "analyst", "ceo", "cfo", "consultant"}
)

// benchColumns are the columns benchRow fills, in order.
var benchColumns = []string{"id", "stage_id", "source", "received_at", "reference", "utm_source", "utm_medium",
	"utm_campaign", "utm_content", "utm_term", "gclid", "gbraid", "ttclid", "msclkid", "fbc", "fbp",
	"revenue_micros", "currency", "gender", "age_range", "location_country", "location_region",
	"job_title", "company_size", "industry"}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// benchRow is one event's column values: a contact's attributes follow from
// its number, so every event of a contact agrees.
func benchRow(e benchEvent, stageIDs []string) []any {
	c, src := e.contact, e.campaign%len(benchSources)
	click := fmt.Sprintf("Cj0KCQ%09d", c)
	var gclid, gbraid, ttclid, msclkid, fbc, fbp string
	switch benchSources[src] {
	case "google":
		if c%7 == 0 {
			gbraid = click
		} else {
			gclid = click
		}
	case "facebook":
		fbc, fbp = "fb.1.1700000000000."+click, fmt.Sprintf("fb.1.1700000000000.%d", c)
	case "tiktok":
		ttclid = click
	case "bing":
		msclkid = click
	}
	var rev, cur any
	if e.revenue != 0 {
		rev, cur = e.revenue, e.currency
	}
	return []any{
		token.NewEventID(time.UnixMilli(e.at)), stageIDs[e.stage], "webhook", e.at, fmt.Sprintf("CRM-%07d", c),
		benchSources[src], benchMediums[src], fmt.Sprintf("campaign-%03d", e.campaign),
		fmt.Sprintf("ad-%03d-%d", e.campaign, e.ad), nullable(benchTerms[c%len(benchTerms)]),
		nullable(gclid), nullable(gbraid), nullable(ttclid), nullable(msclkid), nullable(fbc), nullable(fbp),
		rev, cur, nullable(benchGenders[c%len(benchGenders)]), nullable(benchAges[c%len(benchAges)]),
		nullable(benchCountry[c%len(benchCountry)]), fmt.Sprintf("region-%02d", c%20),
		benchJobs[c%len(benchJobs)], benchSize[c%len(benchSize)], nullable(benchInds[c%len(benchInds)]),
	}
}

// benchStageNames are the funnel's stage names.
func benchStageNames() []string {
	names := make([]string, benchStages)
	for i := range names {
		names[i] = fmt.Sprintf("Stage %02d", i+1)
	}
	return names
}

// createBenchFunnel makes the client (Europe/London) and the funnel and
// returns the funnel id and the stage ids in order.
func createBenchFunnel(ctx context.Context, st *store.Store, db *sql.DB) (string, []string, error) {
	var ns []store.NewStage
	var ids []string
	for _, n := range benchStageNames() {
		id := token.NewID("stg")
		ns = append(ns, store.NewStage{ID: id, Name: n, Token: store.StageToken{ID: token.NewID("tok"), Hash: []byte(id), Sealed: "x", Hint: "h"}})
		ids = append(ids, id)
	}
	c, f, err := st.CreateFunnel(ctx, token.NewID("cli"), "Bench", token.NewID("fun"), "Bench", ns, time.Now())
	if err != nil {
		return "", nil, err
	}
	if _, err := db.ExecContext(ctx, "UPDATE clients SET time_zone = 'Europe/London' WHERE id = $1", c.ID); err != nil {
		return "", nil, err
	}
	return f.ID, ids, nil
}

// loadBench inserts the dataset through db in one transaction of multi-row
// inserts. placeholder(i) spells the i-th parameter (1-based).
func loadBench(ctx context.Context, db *sql.DB, stageIDs []string, placeholder func(int) string) error {
	const perStmt = 500
	var sb strings.Builder
	sb.WriteString("INSERT INTO events (" + strings.Join(benchColumns, ", ") + ") VALUES ")
	for r := range perStmt {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range benchColumns {
			if c > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(placeholder(r*len(benchColumns) + c + 1))
		}
		sb.WriteByte(')')
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, sb.String())
	if err != nil {
		return err
	}
	events := benchData()
	if len(events)%perStmt != 0 {
		return fmt.Errorf("%d events is not a multiple of %d", len(events), perStmt)
	}
	args := make([]any, 0, perStmt*len(benchColumns))
	for i := 0; i < len(events); i += perStmt {
		args = args[:0]
		for _, e := range events[i : i+perStmt] {
			args = append(args, benchRow(e, stageIDs)...)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}
