package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/conversion/google/googlefake"
	"github.com/pruuv/pruuv/internal/conversion/microsoft/microsoftfake"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// connectGoogle connects client to the Google fake through the Data Manager
// API.
func connectGoogle(t testing.TB, cfg config.Config, client string) {
	t.Helper()
	run(t, cfg, "connection", "add", "--client", client, "--platform", "google", "--set", "customer_id="+googlefake.CustomerID,
		"--set", "client_id="+googlefake.ClientID, "--set", "client_secret="+googlefake.ClientSecret,
		"--set", "refresh_token="+googlefake.RefreshToken)
}

// ingestIDs lists, for each events:ingest request the fake got, the
// transaction ids it carried, and each event by id (the last seen).
func ingestIDs(g *googlefake.Fake) ([][]string, map[string][]map[string]any) {
	var reqs [][]string
	events := map[string][]map[string]any{}
	for _, r := range g.Requests() {
		if r.Endpoint != "ingest" {
			continue
		}
		var ids []string
		evs, _ := r.Body["events"].([]any)
		for _, e := range evs {
			m, _ := e.(map[string]any)
			id, _ := m["transactionId"].(string)
			ids = append(ids, id)
			events[id] = append(events[id], m)
		}
		reqs = append(reqs, ids)
	}
	return reqs, events
}

// A `pruuv serve` child is killed with SIGKILL while its request to Google
// hangs. A new child, once the dead one's lease has run out, sends that
// conversion again under the same transaction id, and nothing else: not the
// event sent before, nor the Microsoft send of the same event that completed
// while Google's request hung.
func TestCrashDuringSend(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			g := googlefake.New()
			gURL := serveFake(t, g)
			ms := microsoftfake.New(msAccount, nil)
			ms.AddGoal(msGoal, time.Now().Add(-30*24*time.Hour))
			msURL := serveFake(t, ms)
			cfg := b.Config(t)
			cfg.ConversionsSchedule, cfg.ConversionsPoll = "immediate", time.Second
			// Short, so the test need not wait ten minutes for the dead
			// child's lease; every request here takes milliseconds.
			cfg.ConversionsLease = 6 * time.Second
			cfg.Endpoints.GoogleDataManager, cfg.Endpoints.GoogleOAuth = gURL, gURL
			cfg.Endpoints.Microsoft, cfg.Endpoints.MicrosoftOAuth = msURL, msURL
			stages := pruuvtest.Funnel(t, cfg, "Acme", "Crash", "Lead")
			connectGoogle(t, cfg, "Acme")
			connectMicrosoft(t, cfg, "Acme")
			run(t, cfg, "connection", "map", "--client", "Acme", "--platform", "google", "--stage", stages[0].ID, "--event", googleAction)
			run(t, cfg, "connection", "map", "--client", "Acme", "--platform", "microsoft", "--stage", stages[0].ID, "--event", msGoal)
			click := time.Now().UTC().Add(-26 * time.Hour)

			first := startServe(t, cfg)
			// An event sent before the crash.
			done := post(t, first.URL, stages[0], map[string]any{"reference": "before", "gclid": "Cj0KCQiA-before", "click_timestamp": ts(click)})
			waitFor(t, "the first event to be sent", func() bool { return sends(t, cfg)[sendKey{done, "google"}].Status == "sent" })

			// The next request to Google hangs; the child dies during it.
			g.FailNext(1, googlefake.Hang)
			hung := post(t, first.URL, stages[0], map[string]any{"reference": "during", "gclid": "Cj0KCQiA-during",
				"click_timestamp": ts(click), "msclkid": msclkid(7)})
			waitFor(t, "the request to hang at Google and the Microsoft send to complete", func() bool {
				reqs, _ := ingestIDs(g)
				return len(reqs) == 2 && reflect.DeepEqual(reqs[1], []string{hung}) &&
					sends(t, cfg)[sendKey{hung, "microsoft"}].Status == "sent"
			})
			first.Kill()
			log := sends(t, cfg)
			expect(t, log, hung, "google", want{"pending", "", 0, 0}) // no answer, so nothing was written
			expect(t, log, hung, "microsoft", want{"sent", "", 1, 200})
			expect(t, log, done, "google", want{"sent", "", 1, 200})

			second := startServe(t, cfg)
			waitFor(t, "the hung send to be sent again", func() bool { return sends(t, cfg)[sendKey{hung, "google"}].Status == "sent" })
			if err := second.Terminate(); err != nil {
				t.Fatalf("second child: %v", err)
			}

			reqs, events := ingestIDs(g)
			if want := [][]string{{done}, {hung}, {hung}}; !reflect.DeepEqual(reqs, want) {
				t.Fatalf("events:ingest requests carried %v, want %v", reqs, want)
			}
			if e := events[hung]; !reflect.DeepEqual(e[0], e[1]) {
				t.Fatalf("the re-send differs from the request in flight:\n%v\n%v", e[0], e[1])
			}
			if got := g.Accepted(); !reflect.DeepEqual(got, []string{done, hung}) {
				t.Fatalf("Google accepted %v", got)
			}
			if n := len(ms.Requests()); n != 1 {
				t.Fatalf("Microsoft got %d requests, want the 1 made before the crash", n)
			}
			log = sends(t, cfg)
			expect(t, log, hung, "google", want{"sent", "", 1, 200})
			expect(t, log, hung, "microsoft", want{"sent", "", 1, 200})
			expect(t, log, done, "google", want{"sent", "", 1, 200})
			if got := outcomes(attempts(t, cfg, hung, "google")); !reflect.DeepEqual(got, []string{"sent/200"}) {
				t.Fatalf("attempts of the re-sent conversion: %v", got)
			}
		})
	}
}

// Two `pruuv serve` children on one PostgreSQL, both running the queue with
// the immediate schedule against one Google fake, while events arrive at
// both: every conversion reaches Google exactly once.
func TestTwoProcessesSendOnce(t *testing.T) {
	g := googlefake.New()
	// Each request is held longer than a poll, so that the other child
	// always polls while a request is in flight: a send it could take then
	// would go twice.
	gURL := serveFake(t, slowIngest{g, 1500 * time.Millisecond})
	cfg := pruuvtest.Postgres(t)
	cfg.ConversionsSchedule, cfg.ConversionsPoll = "immediate", time.Second
	cfg.Endpoints.GoogleDataManager, cfg.Endpoints.GoogleOAuth = gURL, gURL
	stages := pruuvtest.Funnel(t, cfg, "Acme", "Race", "Lead", "Qualified", "Won", "Paid")
	connectGoogle(t, cfg, "Acme")
	for _, s := range stages {
		run(t, cfg, "connection", "map", "--client", "Acme", "--platform", "google", "--stage", s.ID, "--event", googleAction)
	}
	procs := []*pruuvtest.Process{startServe(t, cfg), startServe(t, cfg)}
	click := time.Now().UTC().Add(-26 * time.Hour)

	// Events arrive in waves, each sent before the next comes, so that each
	// wave's sends are up for grabs by whichever child polls first.
	const waves, perWave = 5, 40
	var ids []string
	for w := range waves {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var bad []string
		for i := range perWave {
			n := w*perWave + i
			wg.Go(func() {
				st := stages[n%len(stages)]
				body := fmt.Sprintf(`{"reference":"race-%d","gclid":"Cj0KCQiA-race-%d","click_timestamp":%q}`, n, n, ts(click))
				r, err := pruuvtest.PostErr(procs[n%2].URL, st.ID, st.WebhookToken, body)
				mu.Lock()
				defer mu.Unlock()
				id, _ := r.JSON["event_id"].(string)
				if err != nil || r.Status != 200 || id == "" {
					bad = append(bad, fmt.Sprintf("%s: %d %s %v", body, r.Status, r.Body, err))
					return
				}
				ids = append(ids, id)
			})
		}
		wg.Wait()
		if len(bad) > 0 {
			t.Fatalf("webhook refused events: %v", bad)
		}
		waitFor(t, fmt.Sprintf("wave %d to be sent", w+1), func() bool { return len(g.Accepted()) == len(ids) })
	}
	// Google holding an event is not the end of its send: the child still
	// reads the answer and records it. Stopping the children before that
	// would cancel the last request and leave its sends retrying.
	waitFor(t, "every send to be recorded", func() bool {
		n := 0
		for _, s := range sends(t, cfg) {
			if s.Status == "sent" {
				n++
			}
		}
		return n == len(ids)
	})
	for _, p := range procs {
		if err := p.Terminate(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}

	_, events := ingestIDs(g)
	for _, id := range ids {
		if n := len(events[id]); n != 1 {
			t.Errorf("event %s reached Google %d times", id, n)
		}
	}
	if len(events) != len(ids) {
		t.Errorf("Google got %d distinct events, want %d", len(events), len(ids))
	}
	log := sends(t, cfg)
	for _, id := range ids {
		expect(t, log, id, "google", want{"sent", "", 1, 200})
	}
	if len(log) != len(ids) {
		t.Errorf("%d sends in the log, want %d", len(log), len(ids))
	}
	logSplit(t, cfg)
}

// slowIngest holds each events:ingest request for d before the fake answers.
type slowIngest struct {
	*googlefake.Fake
	d time.Duration
}

func (s slowIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/events:ingest" {
		select {
		case <-time.After(s.d):
		case <-r.Context().Done():
		}
	}
	s.Fake.ServeHTTP(w, r)
}

// logSplit logs how many attempts each process made (no CLI shows the lease
// owner), to see both took part.
func logSplit(t *testing.T, cfg config.Config) {
	db, err := sql.Open("pgx", cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(),
		`SELECT split_part(lease_owner, ':', 2), count(*) FROM conversion_attempts GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var split []string
	for rows.Next() {
		var pid string
		var n int
		if err := rows.Scan(&pid, &n); err != nil {
			t.Fatal(err)
		}
		split = append(split, fmt.Sprintf("pid %s: %d", pid, n))
	}
	sort.Strings(split)
	t.Logf("attempts by process: %v", split)
}
