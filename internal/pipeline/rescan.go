package pipeline

import (
	"errors"
	"slices"
	"strings"

	"github.com/cccp-project/cccp/internal/store"
	"github.com/cccp-project/cccp/internal/types"
)

// RescanChecks are the checks a rescan (types.KindRescan) runs on a
// delivered image: those whose answer changes while the image does not,
// because their data comes from outside it. Package updates and outdated
// language packages depend on what the distribution's and the language
// indexes publish after the build. The other checks are fixed by the
// digest and its source: rpm -Va compares the image's files with the
// image's own RPM database, the lint reads the Dockerfile of the commit,
// the capabilities its labels; the smoke run and the user's test script
// test behaviour, which a rebuild, not a rescan, is for (and the script
// would need a checkout and the sandbox for each of hundreds of images).
// cccp has no vulnerability scanner yet; one would belong here.
var RescanChecks = []types.CheckName{types.CheckPackageUpdates, types.CheckLangPackages}

var errNoDigest = errors.New("a rescan needs the delivered digest (sha256:<64 hex>)")

// validDigest tells whether d is a sha256 digest, the only form a rescan
// tests (it goes into an image reference).
func validDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	return ok && len(hex) == 64 && strings.Trim(hex, "0123456789abcdef") == ""
}

// rescanDigest is the digest a rescan run tests, recorded on its test
// stage at Enqueue.
func rescanDigest(run *store.Run) (string, error) {
	for _, st := range run.Stages {
		if st.Name == types.StageTest && validDigest(st.Digest) {
			return st.Digest, nil
		}
	}
	return "", errNoDigest
}

// onlyChecks keeps the checks named in only: a backend that cannot choose
// its checks (Jenkins runs its whole job) ran more than a rescan asked for.
func onlyChecks(checks []store.Check, only []types.CheckName) []store.Check {
	var out []store.Check
	for _, c := range checks {
		if slices.Contains(only, c.Name) {
			out = append(out, c)
		}
	}
	return out
}
