package main

import (
	"fmt"

	"github.com/cccp-project/cccp/internal/types"
)

// The queue's limits: `pipeline.workers` runs work at once, and of them at
// most `pipeline.build.max_concurrent` build and
// `pipeline.test.max_concurrent` test at once (0: only workers limits
// them). A stage whose backend is full waits, and its run page says so.

// maxConcurrent is the per-stage limits as the pipeline takes them.
func (c *serveConfig) maxConcurrent() map[types.StageName]int {
	m := map[types.StageName]int{}
	if n := c.Pipeline.Build.MaxConcurrent; n > 0 {
		m[types.StageBuild] = n
	}
	if n := c.Pipeline.Test.MaxConcurrent; n > 0 {
		m[types.StageTest] = n
	}
	return m
}

// validateQueue checks the limits: none may be negative.
func (c *serveConfig) validateQueue() []error {
	var errs []error
	for key, n := range map[string]int{"pipeline.build.max_concurrent": c.Pipeline.Build.MaxConcurrent,
		"pipeline.test.max_concurrent": c.Pipeline.Test.MaxConcurrent} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s must be 0 (no limit but pipeline.workers) or more, not %d", key, n))
		}
	}
	return errs
}
