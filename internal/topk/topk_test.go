package topk

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func keys(s *Sketch) []string {
	top, _ := s.Top()
	out := make([]string, len(top))
	for i, e := range top {
		out[i] = e.Key
	}
	return out
}

func TestSketch_Table(t *testing.T) {
	cases := []struct {
		name   string
		k      int
		stream []string
		want   []Entry
	}{
		{"empty", 3, nil, []Entry{}},
		{"exact while room", 3, []string{"a", "b", "a", "c", "a", "b"},
			[]Entry{{"a", 3, 0}, {"b", 2, 0}, {"c", 1, 0}}},
		{"newcomer replaces the minimum", 2, []string{"a", "a", "b", "c"},
			[]Entry{{"a", 2, 0}, {"c", 2, 1}}},
		{"replaced key comes back with the minimum as error", 2, []string{"a", "a", "a", "b", "c", "b"},
			[]Entry{{"a", 3, 0}, {"b", 3, 2}}},
		{"k below 1 is 1", 0, []string{"a", "b", "b"}, []Entry{{"b", 3, 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.k)
			for _, k := range tc.stream {
				s.Add(k)
			}
			got, total := s.Top()
			if total != uint64(len(tc.stream)) {
				t.Errorf("total %d, want %d", total, len(tc.stream))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("top %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSketch_HeavyHittersSurviveDistinctFlood: two frequent keys hidden
// in 10 000 keys seen once each, in random order, are the top two, with
// counts within the space-saving bound, and the table never exceeds K.
func TestSketch_HeavyHittersSurviveDistinctFlood(t *testing.T) {
	const k = 10
	var stream []string
	for i := range 10_000 {
		stream = append(stream, fmt.Sprintf("h%d.evil.example", i))
	}
	for range 3000 {
		stream = append(stream, "first.example")
	}
	for range 2000 {
		stream = append(stream, "second.example")
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
	s := New(k)
	for _, key := range stream {
		s.Add(key)
		if n := len(s.entries); n > k {
			t.Fatalf("table holds %d keys, K is %d", n, k)
		}
	}
	top, total := s.Top()
	if top[0].Key != "first.example" || top[1].Key != "second.example" {
		t.Fatalf("top two: %v", top[:2])
	}
	bound := total / k
	for i, want := range []uint64{3000, 2000} {
		if e := top[i]; e.Count < want || e.Guaranteed() > want || e.Err > bound {
			t.Errorf("%s: count %d err %d, true %d, error bound %d", e.Key, e.Count, e.Err, want, bound)
		}
	}
	var sum uint64
	for _, e := range top {
		sum += e.Count
	}
	if sum != total {
		t.Errorf("counts sum to %d, want N=%d", sum, total)
	}
}

// TestSketch_Concurrent: Adds from several goroutines are all counted.
func TestSketch_Concurrent(t *testing.T) {
	s := New(4)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 1000 {
				s.Add(fmt.Sprintf("k%d", (g*i)%7))
			}
		}()
	}
	for range 4 {
		<-done
	}
	if got := s.Total(); got != 4000 {
		t.Fatalf("total %d", got)
	}
	if n := len(keys(s)); n != 4 {
		t.Fatalf("%d keys tracked", n)
	}
}

func TestNew_Bounds(t *testing.T) {
	if New(-5).K() != 1 || New(MaxK+1).K() != MaxK || New(7).K() != 7 {
		t.Fatal("New does not clamp k")
	}
}

// FuzzSketch: any stream keeps the invariants (at most K keys, counts sum
// to N, Count >= Err, every key seen more than N/K times tracked).
func FuzzSketch(f *testing.F) {
	f.Add(uint8(3), []byte("abacab"))
	f.Add(uint8(2), []byte("aaabcb"))
	f.Add(uint8(1), []byte("abb"))
	f.Add(uint8(10), []byte("the quick brown fox jumps over the lazy dog"))
	f.Fuzz(func(t *testing.T, k uint8, stream []byte) {
		s := New(int(k % 16))
		freq := map[string]uint64{}
		for _, b := range stream {
			key := string([]byte{b})
			s.Add(key)
			freq[key]++
		}
		top, total := s.Top()
		if total != uint64(len(stream)) || len(top) > s.K() {
			t.Fatalf("total %d of %d, %d keys of K=%d", total, len(stream), len(top), s.K())
		}
		var sum uint64
		tracked := map[string]Entry{}
		for _, e := range top {
			sum += e.Count
			if e.Count < e.Err || e.Count < freq[e.Key] || e.Guaranteed() > freq[e.Key] {
				t.Fatalf("entry %+v, true frequency %d", e, freq[e.Key])
			}
			tracked[e.Key] = e
		}
		if sum != total {
			t.Fatalf("counts sum to %d, N=%d", sum, total)
		}
		for key, n := range freq {
			if n > total/uint64(s.K()) {
				if _, ok := tracked[key]; !ok {
					t.Fatalf("%q seen %d times of %d is not tracked (K=%d)", key, n, total, s.K())
				}
			}
		}
	})
}
