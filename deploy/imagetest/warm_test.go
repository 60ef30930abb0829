package imagetest

import (
	"os"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/testimage"
)

// The test's Go image warms its build cache with the Containerfile's own
// compile; if the two drift apart, the cache stops hitting and the image
// test silently goes back to a cold compile.
func TestWarmBuildMatchesTheContainerfile(t *testing.T) {
	b, err := os.ReadFile("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	// The RUN's continuation lines joined, as the shell sees them.
	file := strings.Join(strings.Fields(strings.ReplaceAll(string(b), "\\\n", " ")), " ")
	warm := testimage.WarmBuild("./cmd/cccp")
	flags, _, _ := strings.Cut(warm, " -ldflags")
	for _, want := range []string{"WORKDIR /src", "COPY . .", flags + ` -ldflags "-s -w -X main.version=$v" -o /out/cccp ./cmd/cccp`} {
		if !strings.Contains(file, want) {
			t.Errorf("deploy/Containerfile lacks %q, which testimage.WarmBuild (%s, run in /src) assumes", want, warm)
		}
	}
}
