package main

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cccp-project/cccp/internal/rescan"
)

// rescanConfig is `pipeline.rescan`: when every delivered image is scanned
// again (internal/rescan).
type rescanConfig struct {
	// Schedule is a cron line (default rescan.DefaultSchedule, weekly) or
	// "off".
	Schedule string `yaml:"schedule"`
	// Parallel bounds the rescan runs queued or running at once (default
	// rescan.DefaultParallel).
	Parallel int `yaml:"parallel"`
	// Spread is the window a scheduled rescan starts its entries over,
	// evenly (default rescan.DefaultSpread, or half the time between two
	// scheduled rescans when that is shorter; 0: all at once, Parallel at
	// a time). Nil until validate fills in the default.
	Spread *spreadValue `yaml:"spread"`
	// Legacy is the old form's value (`pipeline.rescan: 24h`), kept to warn
	// at start; its period became the schedule "@every 24h".
	Legacy string `yaml:"-"`
}

// UnmarshalYAML reads the block form, or the old duration form, which
// keeps its period: `rescan: 24h` rescans every 24h from cccp's start (it
// used to rebuild every entry instead), `rescan: 0` never.
func (r *rescanConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		type plain rescanConfig
		return n.Decode((*plain)(r))
	}
	d, err := time.ParseDuration(n.Value)
	if n.Value == "0" || n.Value == "" {
		d, err = 0, nil
	}
	if err != nil {
		return fmt.Errorf("line %d: pipeline.rescan: %q is neither the old duration form (24h) nor a block; write\n  rescan:\n    schedule: %q   # cron: minute hour day-of-month month day-of-week", n.Line, n.Value, rescan.DefaultSchedule)
	}
	r.Legacy, r.Schedule = n.Value, rescan.Off
	if d > 0 {
		r.Schedule = "@every " + d.String()
	}
	return nil
}

// migration says how to write an old `pipeline.rescan: DURATION` in the
// new form ("" when the new form is used).
func (r rescanConfig) migration() string {
	if r.Legacy == "" {
		return ""
	}
	return fmt.Sprintf("pipeline.rescan: %s is the old form, read as schedule %q; rescans now re-run the scans of delivered images instead of rebuilding them. Write `pipeline.rescan: {schedule: %q}` (or a cron line such as %q) to keep it, or `schedule: off`", r.Legacy, r.Schedule, r.Schedule, rescan.DefaultSchedule)
}

// defaults fills in the schedule and checks it.
func (r *rescanConfig) validate() error {
	if r.Schedule == "" {
		r.Schedule = rescan.DefaultSchedule
	}
	if r.Parallel < 0 {
		return fmt.Errorf("pipeline.rescan.parallel: %d is negative", r.Parallel)
	}
	sched, err := rescan.ParseSchedule(r.Schedule)
	if err != nil {
		return fmt.Errorf("pipeline.rescan.schedule: %w", err)
	}
	gap := shortestGap(sched)
	if r.Spread == nil {
		d := spreadValue(rescan.DefaultSpread)
		if gap > 0 && time.Duration(d) >= gap {
			d = spreadValue(gap / 2)
		}
		r.Spread = &d
	}
	spread := time.Duration(*r.Spread)
	if spread < 0 {
		return fmt.Errorf("pipeline.rescan.spread: %s is negative", spread)
	}
	if spread > 0 && gap > 0 && spread >= gap {
		return fmt.Errorf("pipeline.rescan.spread: %s is not shorter than the %s between two scheduled rescans (%q): each rescan would still run when the next is due, and that one would be skipped", spread, gap, r.Schedule)
	}
	return nil
}

// shortestGap is the shortest time between two of sched's next few
// rescans (0 for no schedule).
func shortestGap(sched rescan.Schedule) time.Duration {
	if sched == nil {
		return 0
	}
	var gap time.Duration
	t := sched.Next(time.Now())
	for range 16 {
		next := sched.Next(t)
		if next.IsZero() {
			break
		}
		if d := next.Sub(t); gap == 0 || d < gap {
			gap = d
		}
		t = next
	}
	return gap
}

// spread is the configured spread (the default before validate).
func (r rescanConfig) spread() time.Duration {
	if r.Spread == nil {
		return rescan.DefaultSpread
	}
	return time.Duration(*r.Spread)
}

// spreadValue is a duration in the YAML ("1h", "90m"), or 0.
type spreadValue time.Duration

func (v *spreadValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == "0" {
		*v = 0
		return nil
	}
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return fmt.Errorf("line %d: pipeline.rescan.spread: %q is not a duration (such as 1h, 90m, or 0 for all at once)", n.Line, n.Value)
	}
	*v = spreadValue(d)
	return nil
}
