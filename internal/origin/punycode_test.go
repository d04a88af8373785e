package origin

import "testing"

// RFC 3492 section 7.1 sample strings, plus the two IDNA examples every
// implementation is checked against.
var punycodeVectors = []struct {
	name, in, out string
}{
	{"bücher", "bücher", "bcher-kva"},
	{"münchen", "münchen", "mnchen-3ya"},
	{"RFC3492 A Arabic", "\u0644\u064A\u0647\u0645\u0627\u0628\u062A\u0643\u0644\u0645\u0648\u0634\u0639\u0631\u0628\u064A\u061F", "egbpdaj6bu4bxfgehfvwxn"},
	{"RFC3492 B Chinese simplified", "\u4ED6\u4EEC\u4E3A\u4EC0\u4E48\u4E0D\u8BF4\u4E2D\u6587", "ihqwcrb4cv8a8dqg056pqjye"},
	{"RFC3492 L", "3\u5E74B\u7D44\u91D1\u516B\u5148\u751F", "3B-ww4c5e180e575a65lsy2b"},
	{"RFC3492 M", "\u5B89\u5BA4\u5948\u7F8E\u6075-with-SUPER-MONKEYS", "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n"},
	{"RFC3492 O", "\u3072\u3068\u3064\u5C4B\u6839\u306E\u4E0B2", "2-u9tlzr9756bt3uc0v"},
	{"RFC3492 Q", "\u30D1\u30D5\u30A3\u30FCde\u30EB\u30F3\u30D0", "de-jg4avhby1noc0d"},
	{"RFC3492 R", "\u305D\u306E\u30B9\u30D4\u30FC\u30C9\u3067", "d9juau41awczczp"},
	{"RFC3492 S all basic", "-> $1.00 <-", "-> $1.00 <--"},
}

func TestPunycodeEncode(t *testing.T) {
	for _, tc := range punycodeVectors {
		t.Run(tc.name, func(t *testing.T) {
			got, err := appendPunycode(nil, tc.in)
			if err != nil {
				t.Fatalf("appendPunycode(%q): %v", tc.in, err)
			}
			if string(got) != tc.out {
				t.Errorf("appendPunycode(%q) = %q, want %q", tc.in, got, tc.out)
			}
		})
	}
}

func TestPunycodeAppends(t *testing.T) {
	got, err := appendPunycode([]byte("xn--"), "bücher")
	if err != nil || string(got) != "xn--bcher-kva" {
		t.Fatalf("got %q, %v; want %q", got, err, "xn--bcher-kva")
	}
}
