// Package queue is cccp's scheduling policy: given the runs that wait and
// what is running, which run works next. It holds no state and does no I/O;
// the pipeline keeps the queued runs (durably, in the store) and asks Pick.
//
// The policy, in order:
//
//  1. A run that was running when cccp stopped goes first: it holds work
//     at a backend, or a half-built image.
//  2. A run of a better Class goes before a worse one: a person waiting on
//     a pull request or a /retest goes before a push, before a rebuild
//     for a rebuilt parent, before a rescan or a poll. A run rises one
//     class for every State.AgeStep it has waited, so on a machine that
//     is never idle a rescan still runs, late, rather than never.
//  3. Within a class, projects (app-ids) take turns: the project with the
//     fewest running runs goes first, and among equals the next project
//     after the one served last, in name order. One project with a hundred
//     queued runs thus gets one turn per round, like every other project.
//  4. Within a project, the run queued first (the lowest sequence number)
//     goes first.
//
// Every rule is a comparison of two items, so Pick is one pass without
// allocation over the queued runs.
package queue

import (
	"strings"
	"time"

	"github.com/cccp-project/cccp/internal/types"
)

// Class is a run's priority class; a lower class works first.
type Class int

// The classes, best first.
const (
	// ClassPerson: someone is waiting on the result now (a pull request,
	// /retest, a manual run).
	ClassPerson Class = iota
	// ClassPush: a push to a tracked branch, or an index change.
	ClassPush
	// ClassParent: a rebuild because an image it is built FROM changed.
	ClassParent
	// ClassBackground: a scheduled rescan or a poll of branch heads.
	ClassBackground
)

var classNames = [...]string{"person", "push", "parent", "background"}

func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "unknown"
	}
	return classNames[c]
}

// ClassOf is the one place that orders run kinds and cause kinds. A pull
// request or trial run is always a person's; otherwise the cause decides.
// An unknown or empty cause counts as a push.
func ClassOf(kind types.RunKind, cause types.CauseKind) Class {
	if kind == types.KindPR || kind == types.KindTrial {
		return ClassPerson
	}
	switch cause {
	case types.CausePullRequest, types.CauseRetest, types.CauseManual:
		return ClassPerson
	case types.CauseParent, types.CauseBaseImage:
		return ClassParent
	case types.CauseRescan, types.CausePoll:
		return ClassBackground
	}
	return ClassPush
}

// Item is one queued run as the policy sees it.
type Item struct {
	// ID is the run's ID; the policy does not read it.
	ID string
	// Seq orders runs of one project: lower was queued first.
	Seq uint64
	// Project is the fairness key: the app-id (see ProjectOf).
	Project string
	Class   Class
	// Resumed: the run was running when cccp stopped.
	Resumed bool
	// Queued is when the run was queued (for aging; zero: never ages).
	Queued time.Time
}

// ProjectOf is the fairness key of an entry key `app-id/job-id:tag`: its
// app-id, so the jobs of one application share one turn.
func ProjectOf(entryKey string) string {
	app, _, _ := strings.Cut(entryKey, "/")
	return app
}

// State is what the policy needs to know besides the queue.
type State struct {
	// Running counts the runs working now per project (app-id).
	Running map[string]int
	// Last is the project served last ("" = none yet).
	Last string
	// Now and AgeStep age waiting runs: one class better per AgeStep
	// waited. AgeStep 0: no aging.
	Now     time.Time
	AgeStep time.Duration
}

// class is the item's class after aging.
func (st *State) class(it *Item) Class {
	if st.AgeStep <= 0 || it.Queued.IsZero() || it.Class == ClassPerson {
		return it.Class
	}
	up := Class(st.Now.Sub(it.Queued) / st.AgeStep)
	return max(it.Class-up, ClassPerson)
}

// Pick returns the index in items of the run to work next, or -1 when
// items is empty.
func Pick(items []Item, st State) int {
	best, bestClass, bestRunning := -1, Class(0), 0
	for i := range items {
		a := &items[i]
		ca := st.class(a)
		if best >= 0 {
			b := &items[best]
			switch {
			case a.Resumed != b.Resumed:
				if !a.Resumed {
					continue
				}
			case ca != bestClass:
				if ca > bestClass {
					continue
				}
			case a.Project == b.Project:
				if a.Seq < b.Seq {
					best = i
				}
				continue
			default:
				ra := st.Running[a.Project]
				if ra > bestRunning || ra == bestRunning && !turnBefore(a.Project, b.Project, st.Last) {
					continue
				}
			}
		}
		best, bestClass, bestRunning = i, ca, st.Running[a.Project]
	}
	return best
}

// turnBefore tells whether project a's turn comes before b's in the round
// that follows last: the projects after last come first, in name order,
// then the others (last itself at the very end).
func turnBefore(a, b, last string) bool {
	wa, wb := a <= last, b <= last
	if wa != wb {
		return !wa
	}
	return a < b
}
