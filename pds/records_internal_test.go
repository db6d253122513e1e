package pds

import "testing"

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
