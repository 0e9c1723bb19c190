package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// Exact under concurrency (reliability.md D3, D7, L1, L2, L4, L5, L7): on
// SQLite one in-process server; on PostgreSQL two `pruuv serve` processes
// sharing the database, requests alternated between them, so dedup and the
// hourly counter are shown exact across processes and not only goroutines.
func TestExactUnderConcurrency(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := startFleet(t, b)
			t.Run("identical", func(t *testing.T) { testIdenticalAtOnce(t, f) })
			t.Run("limit", func(t *testing.T) { testManySendersAtLimit(t, f) })
			t.Run("isolation", func(t *testing.T) { testStageIsolation(t, f) })
			t.Run("free", func(t *testing.T) { testRejectsUseNoQuota(t, f) })
			t.Run("mix", func(t *testing.T) { testMixAtBoundary(t, f) })
		})
	}
}

// fleet is the servers a test spreads its requests over.
type fleet struct {
	cfg  config.Config
	urls []string
}

func startFleet(t *testing.T, b pruuvtest.Backend) *fleet {
	cfg := b.Config(t)
	if cfg.DatabaseURL == "" {
		return &fleet{cfg: cfg, urls: []string{pruuvtest.Start(t, cfg).URL}}
	}
	p1 := pruuvtest.StartProcess(t, cfg)
	p2 := pruuvtest.StartProcess(t, cfg)
	return &fleet{cfg: cfg, urls: []string{p1.URL, p2.URL}}
}

// shot is one webhook request; n picks the server, alternating.
func (f *fleet) shot(n int, st pruuvtest.Stage, ref string) shot {
	return shot{url: f.urls[n%len(f.urls)], stage: st.ID, token: st.WebhookToken, ref: ref, body: `{"reference":"` + ref + `"}`}
}

type shot struct {
	url, stage, token, ref, body string
}

type answer struct {
	pruuvtest.Response
	err       error
	sent, got time.Time
}

// fire sends every shot from senders goroutines released together and returns
// the answers in shot order.
func fire(shots []shot, senders int) []answer {
	out := make([]answer, len(shots))
	next := make(chan int, len(shots))
	for i := range shots {
		next <- i
	}
	close(next)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range min(senders, len(shots)) {
		wg.Go(func() {
			<-start
			for i := range next {
				s := shots[i]
				a := answer{sent: time.Now()}
				a.Response, a.err = pruuvtest.PostErr(s.url, s.stage, s.token, s.body)
				a.got = time.Now()
				out[i] = a
			}
		})
	}
	close(start)
	wg.Wait()
	return out
}

const (
	bodyDuplicate = `{"received":true,"duplicate":true}`
	bodyLimited   = `{"error":"Rate limit exceeded"}`
)

// acceptedID returns the event id of a 200 that stored an event, checking the
// body is exactly the documented one and the header names the same id; "" if
// the answer is anything else.
func acceptedID(t *testing.T, s shot, a answer) string {
	t.Helper()
	if a.err != nil || a.Status != http.StatusOK || a.JSON["duplicate"] != nil {
		return ""
	}
	id := a.Header.Get("Pruuv-Event-Id")
	if id == "" || a.Body != `{"received":true,"event_id":"`+id+`"}` {
		t.Errorf("%s: accepted with body %s and Pruuv-Event-Id %q", s.ref, a.Body, id)
	}
	return id
}

// isDuplicate reports whether a is exactly the documented duplicate answer and
// names the original event wantID.
func isDuplicate(t *testing.T, s shot, a answer, wantID string) bool {
	t.Helper()
	if a.err != nil || a.Status != http.StatusOK || a.Body != bodyDuplicate {
		return false
	}
	if got := a.Header.Get("Pruuv-Event-Id"); got != wantID {
		t.Errorf("%s: duplicate names event %q, want %q", s.ref, got, wantID)
	}
	return true
}

func isLimited(a answer) bool {
	return a.err == nil && a.Status == http.StatusTooManyRequests && a.Body == bodyLimited
}

func describe(a answer) string {
	if a.err != nil {
		return "error " + a.err.Error()
	}
	return fmt.Sprintf("%d %s", a.Status, a.Body)
}

// stored lists a stage's events through the CLI: reference → event ids.
func stored(t *testing.T, cfg config.Config, stageID string) map[string][]string {
	t.Helper()
	out := pruuvtest.Run(t, cfg, "events", "list", "--stage", stageID, "--json", "--limit", "100000")
	var evs []struct {
		ID        string `json:"event_id"`
		StageID   string `json:"stage_id"`
		Reference string `json:"reference"`
	}
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatalf("events list printed %q: %v", out, err)
	}
	refs := map[string][]string{}
	for _, e := range evs {
		if e.StageID != stageID {
			t.Errorf("events list --stage %s shows an event of stage %s", stageID, e.StageID)
		}
		refs[e.Reference] = append(refs[e.Reference], e.ID)
	}
	return refs
}

func count(refs map[string][]string) int {
	n := 0
	for _, ids := range refs {
		n += len(ids)
	}
	return n
}

// checkStored fails unless the stage holds exactly the events in want
// (reference → event id), each once.
func checkStored(t *testing.T, cfg config.Config, stageID string, want map[string]string) {
	t.Helper()
	got := stored(t, cfg, stageID)
	if n := count(got); n != len(want) {
		t.Errorf("stage holds %d events, want %d", n, len(want))
	}
	for ref, ids := range got {
		if len(ids) != 1 || ids[0] != want[ref] {
			t.Errorf("reference %s stored as %v, want only the acknowledged %q", ref, ids, want[ref])
		}
	}
}

// hourWithRoom returns the current UTC hour once at least need is left of it,
// waiting for the next hour otherwise: a test of the hourly counter must not
// straddle two windows. It fails the test at the end if it did anyway.
func hourWithRoom(t *testing.T, need time.Duration) time.Time {
	now := time.Now().UTC()
	if left := now.Truncate(time.Hour).Add(time.Hour).Sub(now); left < need {
		t.Logf("only %s left in this UTC hour: waiting for the next one so the test stays inside one hourly window", left.Round(time.Millisecond))
		time.Sleep(left + 50*time.Millisecond)
	}
	hour := time.Now().UTC().Truncate(time.Hour)
	t.Cleanup(func() {
		if now := time.Now().UTC(); now.Truncate(time.Hour) != hour {
			t.Errorf("the test ran from the hour of %s into %s: its counts straddle two hourly windows, so raise the margin given to hourWithRoom", hour.Format(time.TimeOnly), now.Format(time.TimeOnly))
		}
	})
	return hour
}

func setLimit(t *testing.T, cfg config.Config, st pruuvtest.Stage, n int) {
	t.Helper()
	pruuvtest.Run(t, cfg, "stage", "set-limit", st.ID, "--per-hour", strconv.Itoa(n))
}

// D3: N identical requests at once record exactly one event.
func testIdenticalAtOnce(t *testing.T, f *fleet) {
	st := pruuvtest.Funnel(t, f.cfg, "Acme", "Identical", "Lead")[0]
	const trials, copies = 20, 50
	want := map[string]string{}
	for trial := range trials {
		ref := fmt.Sprintf("SAME-%02d", trial)
		shots := make([]shot, copies)
		for i := range shots {
			shots[i] = f.shot(i, st, ref)
		}
		answers := fire(shots, copies)
		var ids []string
		for i, a := range answers {
			if id := acceptedID(t, shots[i], a); id != "" {
				ids = append(ids, id)
			}
		}
		if len(ids) != 1 {
			t.Fatalf("trial %d: %d of %d identical requests stored an event, want exactly 1", trial, len(ids), copies)
		}
		want[ref] = ids[0]
		dups := 0
		for i, a := range answers {
			switch {
			case isDuplicate(t, shots[i], a, ids[0]):
				dups++
			case a.Header.Get("Pruuv-Event-Id") == ids[0] && a.Status == http.StatusOK && a.JSON["duplicate"] == nil:
				// the one accepted
			default:
				t.Errorf("trial %d request %d (server %d): %s, want 200 duplicate", trial, i, i%len(f.urls), describe(a))
			}
		}
		if dups != copies-1 {
			t.Fatalf("trial %d: %d duplicates, want %d", trial, dups, copies-1)
		}
	}
	checkStored(t, f.cfg, st.ID, want)
}

// rateHeaders is what a webhook answer says about the stage's hourly window.
type rateHeaders struct {
	remaining int
	t         int
}

// checkRateHeaders parses and checks the IETF RateLimit fields, GitHub's
// X-RateLimit-* headers and, on a 429, Retry-After (L7). The window must end at
// the top of hour+1h, as seen from between sending and receiving a.
func checkRateHeaders(t *testing.T, s shot, a answer, limit int, hour time.Time) rateHeaders {
	t.Helper()
	fail := func(format string, args ...any) rateHeaders {
		t.Helper()
		t.Errorf("%s (%d): "+format, append([]any{s.ref, a.Status}, args...)...)
		return rateHeaders{remaining: -1}
	}
	reset := hour.Add(time.Hour)
	lo, hi := ceilSeconds(reset.Sub(a.got))-1, ceilSeconds(reset.Sub(a.sent))+1

	name, p, err := parseSFItem(a.Header.Get("RateLimit-Policy"))
	if err != nil || name != "stage" || !hasKeys(p, "q", "w") || p["q"] != int64(limit) || p["w"] != 3600 {
		return fail("RateLimit-Policy %q (%v), want %q", a.Header.Get("RateLimit-Policy"), err, fmt.Sprintf(`"stage";q=%d;w=3600`, limit))
	}
	name, p, err = parseSFItem(a.Header.Get("RateLimit"))
	if err != nil || name != "stage" || !hasKeys(p, "r", "t") {
		return fail("RateLimit %q (%v), want \"stage\";r=N;t=S", a.Header.Get("RateLimit"), err)
	}
	rh := rateHeaders{remaining: int(p["r"]), t: int(p["t"])}
	if rh.remaining < 0 || rh.remaining > limit {
		return fail("RateLimit r=%d outside 0..%d", rh.remaining, limit)
	}
	if rh.t < max(lo, 1) || rh.t > hi {
		return fail("RateLimit t=%d, want %d..%d seconds to %s", rh.t, lo, hi, reset.Format(time.TimeOnly))
	}
	if got := a.Header.Get("X-RateLimit-Limit"); got != strconv.Itoa(limit) {
		return fail("X-RateLimit-Limit %q, want %d", got, limit)
	}
	if got := a.Header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(rh.remaining) {
		return fail("X-RateLimit-Remaining %q, but RateLimit says r=%d", got, rh.remaining)
	}
	if got := a.Header.Get("X-RateLimit-Reset"); got != strconv.FormatInt(reset.Unix(), 10) {
		return fail("X-RateLimit-Reset %q, want %d (%s)", got, reset.Unix(), reset.Format(time.RFC3339))
	}
	ra := a.Header.Get("Retry-After")
	if a.Status != http.StatusTooManyRequests {
		if ra != "" {
			return fail("Retry-After %q on a %d", ra, a.Status)
		}
		return rh
	}
	secs, err := strconv.Atoi(ra)
	if err != nil || strconv.Itoa(secs) != ra || secs < 1 {
		return fail("Retry-After %q, want delay-seconds ≥ 1", ra)
	}
	if secs != rh.t {
		return fail("Retry-After %d differs from RateLimit t=%d", secs, rh.t)
	}
	if rh.remaining != 0 {
		return fail("429 with RateLimit r=%d, want 0", rh.remaining)
	}
	return rh
}

func ceilSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

func hasKeys(p map[string]int64, keys ...string) bool {
	if len(p) != len(keys) {
		return false
	}
	for _, k := range keys {
		if _, ok := p[k]; !ok {
			return false
		}
	}
	return true
}

// parseSFItem parses an RFC 8941 structured-field Item whose bare item is a
// String and whose parameters all carry Integers, e.g. `"stage";q=100;w=3600`.
func parseSFItem(s string) (string, map[string]int64, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", nil, errors.New("not a String item")
	}
	var name strings.Builder
	i := 1
	for ; ; i++ {
		if i >= len(s) {
			return "", nil, errors.New("unterminated String")
		}
		c := s[i]
		if c == '"' {
			i++
			break
		}
		if c == '\\' {
			i++
			if i >= len(s) || s[i] != '"' && s[i] != '\\' {
				return "", nil, errors.New("bad escape in String")
			}
			c = s[i]
		} else if c < 0x20 || c > 0x7e {
			return "", nil, fmt.Errorf("byte %#x in String", c)
		}
		name.WriteByte(c)
	}
	params := map[string]int64{}
	for i < len(s) {
		if s[i] != ';' {
			return "", nil, fmt.Errorf("unexpected %q at %d", s[i], i)
		}
		i++
		for i < len(s) && s[i] == ' ' {
			i++
		}
		j := i
		if j >= len(s) || !(s[j] >= 'a' && s[j] <= 'z' || s[j] == '*') {
			return "", nil, fmt.Errorf("bad parameter key at %d", i)
		}
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9' || strings.IndexByte("_-.*", s[j]) >= 0) {
			j++
		}
		key := s[i:j]
		if j >= len(s) || s[j] != '=' {
			return "", nil, fmt.Errorf("parameter %s has no Integer value", key)
		}
		j++
		k := j
		if k < len(s) && s[k] == '-' {
			k++
		}
		digits := k
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == digits || k-digits > 15 {
			return "", nil, fmt.Errorf("parameter %s: bad Integer", key)
		}
		if _, dup := params[key]; dup {
			return "", nil, fmt.Errorf("parameter %s given twice", key)
		}
		params[key], _ = strconv.ParseInt(s[j:k], 10, 64)
		i = k
	}
	return name.String(), params, nil
}

func TestParseSFItem(t *testing.T) {
	for in, ok := range map[string]bool{
		`"stage";q=100;w=3600`: true, `"stage"; r=0;t=1`: true, `"st\"age";q=-1`: true,
		`stage;q=1`: false, `"stage";q=1.5`: false, `"stage";q`: false, `"stage";Q=1`: false,
		`"stage";q=1;q=2`: false, `"stage";q=1 `: false, `"stage`: false, `"stage";q=1234567890123456`: false,
	} {
		if _, _, err := parseSFItem(in); (err == nil) != ok {
			t.Errorf("parseSFItem(%s): %v, want ok=%v", in, err, ok)
		}
	}
}

// L1, L2, L7, D7: many senders around the limit.
func testManySendersAtLimit(t *testing.T, f *fleet) {
	const limit, n, senders = 100, 180, 64
	st := pruuvtest.Funnel(t, f.cfg, "Acme", "Limit", "Lead")[0]
	setLimit(t, f.cfg, st, limit)
	hour := hourWithRoom(t, time.Minute)
	start := time.Now()

	shots := make([]shot, n)
	for i := range shots {
		shots[i] = f.shot(i, st, fmt.Sprintf("L-%03d", i))
	}
	answers := fire(shots, senders)
	want := map[string]string{} // accepted reference → event id
	var limited []shot
	remainingSeen := map[int]string{}
	for i, a := range answers {
		s := shots[i]
		switch id := acceptedID(t, s, a); {
		case id != "":
			want[s.ref] = id
			r := checkRateHeaders(t, s, a, limit, hour).remaining
			if r >= limit {
				t.Errorf("%s accepted but RateLimit r=%d: the event was not counted", s.ref, r)
			}
			if other, ok := remainingSeen[r]; ok && r >= 0 {
				t.Errorf("%s and %s were both accepted leaving r=%d: the hourly counter is not exact", other, s.ref, r)
			}
			remainingSeen[r] = s.ref
		case isLimited(a):
			checkRateHeaders(t, s, a, limit, hour)
			limited = append(limited, s)
		default:
			t.Errorf("%s (server %d): %s, want 200 or 429", s.ref, i%len(f.urls), describe(a))
		}
	}
	if len(want) != limit || len(limited) != n-limit {
		t.Fatalf("%d senders, %d unique references, limit %d: %d accepted and %d × 429, want exactly %d and %d",
			senders, n, limit, len(want), len(limited), limit, n-limit)
	}
	checkStored(t, f.cfg, st.ID, want)

	// D7: at the limit, retries of accepted references are duplicates, not 429,
	// and change nothing; refused references stay refused.
	var retries []shot
	for ref := range want {
		retries = append(retries, f.shot(len(retries), st, ref), f.shot(len(retries)+1, st, ref))
	}
	for _, s := range limited[:10] {
		retries = append(retries, f.shot(len(retries), st, s.ref))
	}
	answers = fire(retries, senders)
	if time.Since(start) >= 55*time.Second {
		t.Fatalf("the retries ran %s after the first requests, too late to be inside the 60 s dedup window", time.Since(start))
	}
	for i, a := range answers {
		s := retries[i]
		if id, ok := want[s.ref]; ok {
			if !isDuplicate(t, s, a, id) {
				t.Errorf("retry of accepted %s at the limit: %s, want 200 duplicate", s.ref, describe(a))
			} else if r := checkRateHeaders(t, s, a, limit, hour).remaining; r != 0 {
				t.Errorf("retry of %s at the limit shows r=%d, want 0", s.ref, r)
			}
			continue
		}
		if !isLimited(a) {
			t.Errorf("retry of refused %s: %s, want 429", s.ref, describe(a))
		}
		checkRateHeaders(t, s, a, limit, hour)
	}
	checkStored(t, f.cfg, st.ID, want)
}

// L4: one stage exhausted does not touch another's quota or headers.
func testStageIsolation(t *testing.T, f *fleet) {
	stages := pruuvtest.Funnel(t, f.cfg, "Acme", "Isolation", "A", "B")
	a, b := stages[0], stages[1]
	const limitA, limitB, sendA, sendB = 5, 20, 20, 10
	setLimit(t, f.cfg, a, limitA)
	setLimit(t, f.cfg, b, limitB)
	hour := hourWithRoom(t, time.Minute)

	var shots []shot
	for i := range sendA + sendB {
		if i%3 == 2 && i/3 < sendB { // interleave: A, A, B, A, A, B, …
			shots = append(shots, f.shot(i, b, fmt.Sprintf("B-%02d", i)))
		} else {
			shots = append(shots, f.shot(i, a, fmt.Sprintf("A-%02d", i)))
		}
	}
	answers := fire(shots, 64)
	wantA, wantB := map[string]string{}, map[string]string{}
	limitedA := 0
	remainingB := map[int]bool{}
	for i, ans := range answers {
		s := shots[i]
		limit, want := limitA, wantA
		if s.stage == b.ID {
			limit, want = limitB, wantB
		}
		rh := checkRateHeaders(t, s, ans, limit, hour)
		switch id := acceptedID(t, s, ans); {
		case id != "":
			want[s.ref] = id
			if s.stage == b.ID {
				remainingB[rh.remaining] = true
			}
		case isLimited(ans) && s.stage == a.ID:
			limitedA++
		default:
			t.Errorf("%s (server %d): %s", s.ref, i%len(f.urls), describe(ans))
		}
	}
	if len(wantA) != limitA || limitedA != sendA-limitA {
		t.Errorf("stage A: %d accepted, %d × 429; want %d and %d", len(wantA), limitedA, limitA, sendA-limitA)
	}
	if len(wantB) != sendB {
		t.Errorf("stage B: %d of %d accepted although under its own limit", len(wantB), sendB)
	}
	for r := limitB - sendB; r < limitB; r++ {
		if !remainingB[r] {
			t.Errorf("no accepted B event left r=%d; B's remaining values %v should be exactly %d..%d", r, remainingB, limitB-sendB, limitB-1)
		}
	}

	// With A exhausted, B still accepts and reports its own window.
	s := f.shot(1, b, "B-after")
	ans := fire([]shot{s}, 1)[0]
	if id := acceptedID(t, s, ans); id == "" {
		t.Fatalf("B after A is exhausted: %s, want accepted", describe(ans))
	} else {
		wantB[s.ref] = id
	}
	if rh := checkRateHeaders(t, s, ans, limitB, hour); rh.remaining != limitB-sendB-1 {
		t.Errorf("B after A is exhausted shows r=%d, want %d", rh.remaining, limitB-sendB-1)
	}
	s = f.shot(0, a, "A-after")
	if ans := fire([]shot{s}, 1)[0]; !isLimited(ans) {
		t.Errorf("A after B accepted: %s, want 429", describe(ans))
	}
	checkStored(t, f.cfg, a.ID, wantA)
	checkStored(t, f.cfg, b.ID, wantB)
}

// L5: duplicates, 400s, 401s and 413s do not use the quota.
func testRejectsUseNoQuota(t *testing.T, f *fleet) {
	stages := pruuvtest.Funnel(t, f.cfg, "Acme", "Free", "Lead", "Other")
	st, other := stages[0], stages[1]
	const limit = 10
	setLimit(t, f.cfg, st, limit)
	hour := hourWithRoom(t, time.Minute)

	want := map[string]string{}
	for i, ref := range []string{"F-1", "F-2", "F-3"} {
		s := f.shot(i, st, ref)
		a := fire([]shot{s}, 1)[0]
		id := acceptedID(t, s, a)
		if id == "" {
			t.Fatalf("%s: %s, want accepted", ref, describe(a))
		}
		want[ref] = id
		if r := checkRateHeaders(t, s, a, limit, hour).remaining; r != limit-1-i {
			t.Fatalf("%s leaves r=%d, want %d", ref, r, limit-1-i)
		}
	}
	const left = limit - 3

	type kind struct {
		status int
		rated  bool // the answer carries the rate headers
	}
	var shots []shot
	var kinds []kind
	add := func(s shot, k kind) { shots = append(shots, s); kinds = append(kinds, k) }
	for i := range 40 {
		s := f.shot(i, st, fmt.Sprintf("F-%d", 1+i%3))
		switch i % 8 {
		case 0, 1: // duplicate
			add(s, kind{http.StatusOK, true})
		case 2:
			s.body = `{"reference":"F-new-` + strconv.Itoa(i) + `","revenue_value":"12"}`
			add(s, kind{http.StatusBadRequest, true})
		case 3:
			s.body = []string{`{"reference":""}`, `not json`, `[]`, `{"reference":"F-x","currency":"XYZ1"}`, `{"reference":"F-y","click_timestamp":"yesterday"}`}[i%5]
			add(s, kind{http.StatusBadRequest, true})
		case 4:
			s.token = other.WebhookToken // another stage's valid token
			add(s, kind{http.StatusUnauthorized, false})
		case 5:
			s.token = ""
			add(s, kind{http.StatusUnauthorized, false})
		case 6:
			s.token = "not-a-token"
			add(s, kind{http.StatusUnauthorized, false})
		case 7:
			s.body = `{"reference":"F-big-` + strconv.Itoa(i) + `","utm_term":"` + strings.Repeat("x", 70<<10) + `"}`
			add(s, kind{http.StatusRequestEntityTooLarge, false})
		}
	}
	answers := fire(shots, 32)
	for i, a := range answers {
		s, k := shots[i], kinds[i]
		if a.err != nil || a.Status != k.status {
			t.Errorf("request %d (%s): %s, want %d", i, s.body[:min(len(s.body), 40)], describe(a), k.status)
			continue
		}
		switch k.status {
		case http.StatusOK:
			if !isDuplicate(t, s, a, want[s.ref]) {
				t.Errorf("%s: %s, want duplicate", s.ref, a.Body)
			}
		case http.StatusBadRequest:
			if a.JSON["error"] != "Validation failed" || a.JSON["details"] == nil {
				t.Errorf("400 body %s", a.Body)
			}
		case http.StatusUnauthorized:
			if a.Body != `{"error":"Unauthorized"}` {
				t.Errorf("401 body %s", a.Body)
			}
		}
		if k.rated {
			if r := checkRateHeaders(t, s, a, limit, hour).remaining; r != left {
				t.Errorf("request %d (%d) shows r=%d, want %d: something used the quota", i, a.Status, r, left)
			}
		}
	}

	// After the run the counter is where the three accepted events left it.
	s := f.shot(0, st, "F-1")
	a := fire([]shot{s}, 1)[0]
	if !isDuplicate(t, s, a, want["F-1"]) {
		t.Fatalf("F-1 again: %s, want duplicate", describe(a))
	}
	if r := checkRateHeaders(t, s, a, limit, hour).remaining; r != left {
		t.Errorf("after the run r=%d, want %d unchanged", r, left)
	}
	s = f.shot(1, st, "F-4")
	a = fire([]shot{s}, 1)[0]
	id := acceptedID(t, s, a)
	if id == "" {
		t.Fatalf("F-4: %s, want accepted", describe(a))
	}
	want["F-4"] = id
	if r := checkRateHeaders(t, s, a, limit, hour).remaining; r != left-1 {
		t.Errorf("next accepted event leaves r=%d, want %d", r, left-1)
	}
	checkStored(t, f.cfg, st.ID, want)
}

// Identical and unique requests together at the limit's edge: accepted ==
// min(limit, distinct references), every reference either accepted once with
// the rest of its copies duplicates, or refused in every copy.
func testMixAtBoundary(t *testing.T, f *fleet) {
	const limit = 30
	for _, tc := range []struct {
		name                          string
		prefill, hot, copies, singles int
	}{
		{"over", 0, 10, 8, 40},  // 50 distinct
		{"under", 0, 10, 8, 10}, // 20 distinct
		{"edge", 25, 3, 10, 2},  // exactly the 5 left
		{"edge+1", 25, 3, 10, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := pruuvtest.Funnel(t, f.cfg, "Acme", "Mix "+tc.name, "Lead")[0]
			setLimit(t, f.cfg, st, limit)
			hour := hourWithRoom(t, time.Minute)
			want := map[string]string{}

			var pre []shot
			for i := range tc.prefill {
				pre = append(pre, f.shot(i, st, fmt.Sprintf("P-%02d", i)))
			}
			for i, a := range fire(pre, 16) {
				id := acceptedID(t, pre[i], a)
				if id == "" {
					t.Fatalf("prefill %s: %s", pre[i].ref, describe(a))
				}
				want[pre[i].ref] = id
			}

			var shots []shot
			for h := range tc.hot {
				for range tc.copies {
					shots = append(shots, shot{ref: fmt.Sprintf("H-%02d", h)})
				}
			}
			for s := range tc.singles {
				shots = append(shots, shot{ref: fmt.Sprintf("S-%02d", s)})
			}
			rand.Shuffle(len(shots), func(i, j int) { shots[i], shots[j] = shots[j], shots[i] })
			for i := range shots {
				shots[i] = f.shot(i, st, shots[i].ref)
			}
			answers := fire(shots, 64)

			byRef := map[string][]int{}
			for i, s := range shots {
				byRef[s.ref] = append(byRef[s.ref], i)
			}
			refused := 0
			for ref, idx := range byRef {
				var ids []string
				for _, i := range idx {
					if id := acceptedID(t, shots[i], answers[i]); id != "" {
						ids = append(ids, id)
					}
					checkRateHeaders(t, shots[i], answers[i], limit, hour)
				}
				switch len(ids) {
				case 0:
					for _, i := range idx {
						if !isLimited(answers[i]) {
							t.Errorf("%s was never accepted, yet one copy got %s, want 429", ref, describe(answers[i]))
						}
					}
					refused++
				case 1:
					want[ref] = ids[0]
					for _, i := range idx {
						a := answers[i]
						if a.Header.Get("Pruuv-Event-Id") == ids[0] && a.JSON["duplicate"] == nil {
							continue // the accepted copy
						}
						if !isDuplicate(t, shots[i], a, ids[0]) {
							t.Errorf("%s was accepted, yet a copy got %s, want duplicate", ref, describe(a))
						}
					}
				default:
					t.Errorf("%s stored %d times: %v", ref, len(ids), ids)
				}
			}
			distinct := tc.prefill + len(byRef)
			if got, wantN := len(want), min(limit, distinct); got != wantN {
				t.Errorf("%d accepted of %d distinct references at limit %d, want exactly %d", got, distinct, limit, wantN)
			}
			if wantRefused := max(distinct-limit, 0); refused != wantRefused {
				t.Errorf("%d references refused, want %d", refused, wantRefused)
			}
			checkStored(t, f.cfg, st.ID, want)
		})
	}
}
