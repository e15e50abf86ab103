package main

import (
	"fmt"
	"time"
)

// durationFlag is a positive time.Duration flag.
type durationFlag struct{ d time.Duration }

func (f *durationFlag) String() string { return f.d.String() }

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("want a positive duration like 65m, got %q", s)
	}
	f.d = d
	return nil
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (f *stringsFlag) String() string { return fmt.Sprint([]string(*f)) }

func (f *stringsFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}
