package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// durationFlag is a positive duration flag whose parse error names the flag; kingpin's own
// says only "invalid duration", which leaves the user guessing which one.
func durationFlag(f *kingpin.FlagClause) *time.Duration {
	d := new(time.Duration)
	f.SetValue(&durationValue{name: f.Model().Name, d: d})
	return d
}

type durationValue struct {
	name string
	d    *time.Duration
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("--%s: %q is not a positive duration such as 90s, 5m or 1h", v.name, s)
	}
	*v.d = d
	return nil
}

func (v *durationValue) String() string { return v.d.String() }

// weekday turns a validated --streak.week-start value into a time.Weekday.
func weekday(name string) time.Weekday {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(d.String(), name) {
			return d
		}
	}
	return time.Monday
}
