// Package types holds cccp's shared vocabulary: the names of stages, checks,
// run kinds and cause kinds that the pipeline, the store, the bot and the web
// UI must all spell alike. Each is a typed string, so a misspelt name is a
// compile error rather than a silent mismatch, and its values are the ones
// stored in cccp.db and shown in the API (they never change once released).
//
// The package imports nothing of cccp; every other package may import it.
package types

// StageName names a stage of a run.
type StageName string

// The stages, in the order they run.
const (
	StageBuild   StageName = "build"
	StageTest    StageName = "test"
	StageDeliver StageName = "deliver"
)

// Stages lists every stage in run order.
var Stages = []StageName{StageBuild, StageTest, StageDeliver}

// CheckName names one check of the test stage.
type CheckName string

// The checks of the test stage, as reported and as named in the blocking
// configuration (`--blocking`, `pipeline.blocking`).
const (
	CheckLint           CheckName = "lint"
	CheckCapabilities   CheckName = "capabilities"
	CheckPackageUpdates CheckName = "package-updates"
	CheckRPMVerify      CheckName = "rpm-verify"
	CheckLangPackages   CheckName = "language-packages"
	CheckSmoke          CheckName = "smoke"
	CheckUserScript     CheckName = "user-script"
)

// Checks lists every check in the order it is shown.
var Checks = []CheckName{CheckLint, CheckCapabilities, CheckPackageUpdates, CheckRPMVerify, CheckLangPackages, CheckSmoke, CheckUserScript}

// DefaultBlocking are the checks whose failure fails the test stage unless
// configured otherwise: the smoke run and the user's own tests. Lint and
// scan findings are reported but do not fail a build.
var DefaultBlocking = []CheckName{CheckSmoke, CheckUserScript}

// KnownCheck tells whether n names a check.
func KnownCheck(n CheckName) bool {
	for _, c := range Checks {
		if c == n {
			return true
		}
	}
	return false
}

// RunKind says what a run does with its image.
type RunKind string

// The run kinds.
const (
	// KindBranch builds, tests and delivers a tracked branch.
	KindBranch RunKind = "branch"
	// KindPR builds and tests a pull request under a per-run tag; it never
	// moves :test, :rc or a final tag.
	KindPR RunKind = "pr"
	// KindTrial builds and tests an entry proposed in an index pull request.
	KindTrial RunKind = "trial"
	// KindRescan re-runs the test stage's scans on an entry's delivered
	// digest: no build, no tag moves, no signing.
	KindRescan RunKind = "rescan"
)

// CauseKind says why a run was started.
type CauseKind string

// The cause kinds.
const (
	CausePush        CauseKind = "push"
	CausePullRequest CauseKind = "pull_request"
	CauseParent      CauseKind = "parent"
	CauseIndex       CauseKind = "index"
	CauseRescan      CauseKind = "rescan"
	CauseManual      CauseKind = "manual"
	CauseRetest      CauseKind = "retest"
	CausePoll        CauseKind = "poll"
	CauseBaseImage   CauseKind = "base-image"
)
