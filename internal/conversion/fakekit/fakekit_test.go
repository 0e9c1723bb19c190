package fakekit_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/pruuv/pruuv/internal/conversion/fakekit"
)

func TestFailuresInOrder(t *testing.T) {
	var f fakekit.Failures[int]
	if k := f.Next(); k != 0 {
		t.Fatalf("empty queue gave %d", k)
	}
	f.Add(2, 7)
	f.Add(1, 9)
	f.Add(0, 5)
	var got []int
	for range 4 {
		got = append(got, f.Next())
	}
	if want := []int{7, 7, 9, 0}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestLogCopies(t *testing.T) {
	var l fakekit.Log[string]
	if all := l.All(); len(all) != 0 {
		t.Fatalf("empty log: %v", all)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { l.Add("r") })
	}
	wg.Wait()
	all := l.All()
	if len(all) != 10 {
		t.Fatalf("%d entries, want 10", len(all))
	}
	all[0] = "changed"
	if l.All()[0] != "r" {
		t.Error("All returned the log itself, not a copy")
	}
}
