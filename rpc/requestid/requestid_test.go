package requestid

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTake: a valid caller ID is kept and echoed; a missing, too long or
// unprintable one is replaced by a fresh 16-hex-digit ID, echoed too.
func TestTake(t *testing.T) {
	for _, c := range []struct {
		given string
		keep  bool
	}{
		{"abc-DEF_1.2", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"a b", false},
		{"a\nb", false},
		{"é", false},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		if c.given != "" {
			r.Header.Set(Header, c.given)
		}
		w := httptest.NewRecorder()
		id := Take(w, r)
		if w.Header().Get(Header) != id {
			t.Errorf("%q: echoed %q, want %q", c.given, w.Header().Get(Header), id)
		}
		if c.keep && id != c.given {
			t.Errorf("%q: replaced by %q", c.given, id)
		}
		if !c.keep && (id == c.given || len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "") {
			t.Errorf("%q: got %q, want a fresh 16-hex-digit ID", c.given, id)
		}
	}
	if a, b := New(), New(); a == b {
		t.Errorf("two fresh IDs are equal: %s", a)
	}
}
