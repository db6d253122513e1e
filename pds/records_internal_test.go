package pds

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestJSONDepth(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`{}`, 1},
		{`{"a":[1,{"b":2}]}`, 3},
		{`{"s":"[[[[{{{{"}`, 1},
		{`{"s":"quote \" then [[["}`, 1},
		{`{"s":"backslash \\", "t":[[]]}`, 3},
		{`[[[[]]]]`, 4},
	} {
		if got := jsonDepth([]byte(tc.in)); got != tc.want {
			t.Errorf("jsonDepth(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// FuzzJSONDepth: on valid JSON the byte scan agrees with a tokenizing decoder.
func FuzzJSONDepth(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":"]}"}]}`, `[[["\\"]]]`, `{"s":"\u005b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := jsonDepth(b)
		if !json.Valid(b) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		depth, want := 0, 0
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if d, ok := tok.(json.Delim); ok {
				if d == '{' || d == '[' {
					depth++
					want = max(want, depth)
				} else {
					depth--
				}
			}
		}
		if got != want {
			t.Fatalf("jsonDepth(%q) = %d, decoder says %d", b, got, want)
		}
	})
}
