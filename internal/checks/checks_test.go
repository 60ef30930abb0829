package checks

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParsePackageUpdates(t *testing.T) {
	apt, err := os.ReadFile(filepath.Join("testdata", "apt-upgradable-host.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		out          string
		wantPassed   bool
		wantSkipped  bool
		wantFindings int
		wantSummary  string
	}{
		{name: "apt with upgrades", out: "@@cccp apt\n" + string(apt) + "@@cccp exit-apt 0\n", wantFindings: 4, wantSummary: "apt: 4 package updates"},
		{name: "apt up to date", out: "@@cccp apt\nListing...\n@@cccp exit-apt 0\n", wantPassed: true, wantSummary: "no updates"},
		{name: "no package manager", out: "@@cccp none\n", wantPassed: true, wantSkipped: true, wantSummary: "no package manager"},
		{name: "dnf cannot reach a repository", out: "@@cccp dnf\nError: Failed to download metadata for repo 'baseos'\n@@cccp exit-dnf 1\n",
			wantPassed: true, wantFindings: 1, wantSummary: "could not check"},
		{name: "apk cannot reach its index", out: "@@cccp apk\nWARNING: Ignoring APKINDEX.66df20b8.tar.gz: No such file or directory\n@@cccp exit-apk 1\n",
			wantPassed: true, wantFindings: 1, wantSummary: "could not check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parsePackageUpdates(tt.out)
			if r.Passed != tt.wantPassed || r.Skipped != tt.wantSkipped || len(r.Findings) != tt.wantFindings ||
				!strings.Contains(r.Summary, tt.wantSummary) {
				t.Errorf("result = %+v", r)
			}
		})
	}
}

func TestParseRPMVerify(t *testing.T) {
	tests := []struct {
		name       string
		out        string
		wantPassed bool
		findings   int
	}{
		{name: "not rpm", out: "@@cccp none\n", wantPassed: true},
		{name: "clean", out: "@@cccp rpm\n@@cccp exit-rpm 0\n", wantPassed: true},
		{name: "config changed only", out: "@@cccp rpm\nS.5....T.  c /etc/yum.conf\n@@cccp exit-rpm 1\n", wantPassed: true, findings: 1},
		{name: "binary changed", out: "@@cccp rpm\nS.5....T.  c /etc/yum.conf\nS.5....T.    /usr/bin/ls\nmissing     /usr/share/doc/x\n@@cccp exit-rpm 1\n", findings: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parseRPMVerify(tt.out)
			if r.Passed != tt.wantPassed || len(r.Findings) != tt.findings {
				t.Errorf("result = %+v", r)
			}
		})
	}
}

func TestParseLangPackages(t *testing.T) {
	tests := []struct {
		name       string
		out        string
		wantPassed bool
		findings   []string
	}{
		{name: "none present", out: "@@cccp end\n", wantPassed: true},
		{name: "pip outdated", out: "@@cccp pip\n[{\"name\": \"requests\", \"version\": \"2.0.0\", \"latest_version\": \"2.32.3\", \"latest_filetype\": \"wheel\"}]\n@@cccp exit-pip 0\n@@cccp end\n",
			findings: []string{"pip: requests 2.0.0 -> 2.32.3"}},
		{name: "pip offline is a finding only", out: "@@cccp pip\nWARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(': Failed to establish a new connection: [Errno 101] Network is unreachable')'\n[]\n@@cccp exit-pip 0\n@@cccp end\n",
			wantPassed: true, findings: []string{"pip: could not reach the package index: WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(': Failed to establish a new connection: [Errno 101] Network is unreachable')'"}},
		{name: "npm and gem outdated", out: "@@cccp npm\n{\n  \"npm\": {\n    \"current\": \"9.2.0\",\n    \"wanted\": \"10.8.1\",\n    \"latest\": \"10.8.1\"\n  }\n}\n@@cccp exit-npm 1\n@@cccp gem\nrake (13.0.1 < 13.2.1)\n@@cccp exit-gem 0\n@@cccp end\n",
			findings: []string{"npm: npm 9.2.0 -> 10.8.1", "gem: rake (13.0.1 < 13.2.1)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parseLangPackages(tt.out)
			if r.Passed != tt.wantPassed || !slices.Equal(r.Findings, tt.findings) {
				t.Errorf("result = %+v\nwant passed=%v findings %q", r, tt.wantPassed, tt.findings)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   []string
	}{
		{name: "no labels", labels: map[string]string{"maintainer": "x"}},
		{name: "atomic style RUN", labels: map[string]string{
			"RUN": "podman run -it --privileged --net=host --pid=host -v /:/host -v data:/data --cap-add SYS_ADMIN -e NAME=NAME IMAGE"},
			want: []string{"RUN: cap-add SYS_ADMIN", "RUN: host mount /:/host", "RUN: host network", "RUN: host pid namespace", "RUN: privileged"}},
		{name: "lower-case install with separate values", labels: map[string]string{
			"install": "docker run --rm --network host --ipc host --security-opt label=disable --mount type=bind,source=/etc,target=/host/etc --device /dev/fuse IMAGE /install.sh"},
			want: []string{"install: device /dev/fuse", "install: host ipc namespace", "install: host mount type=bind,source=/etc,target=/host/etc", "install: host network", "install: security-opt label=disable"}},
		{name: "harmless RUN", labels: map[string]string{"RUN": "podman run -d --name app -p 8080:8080 IMAGE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			r := Capabilities(tt.labels, &log)
			if !r.Passed || !slices.Equal(r.Findings, tt.want) {
				t.Errorf("findings = %q, want %q", r.Findings, tt.want)
			}
		})
	}
}

func TestLint(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		wantPassed bool
		want       []string // substrings, one per finding
	}{
		{name: "casing and maintainer", dockerfile: "from busybox as Build\nMAINTAINER me\nRUN true\n", wantPassed: true,
			want: []string{"Dockerfile:1: StageNameCasing", "Dockerfile:1: ConsistentInstructionCasing", "Dockerfile:2: MaintainerDeprecated"}},
		{name: "clean", dockerfile: "FROM busybox\nRUN true\n", wantPassed: true},
		{name: "parse error fails", dockerfile: "FROM busybox\nBOGUS x\n", want: []string{"Dockerfile:2: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			r := Lint("Dockerfile", []byte(tt.dockerfile), &log)
			if r.Passed != tt.wantPassed || len(r.Findings) != len(tt.want) {
				t.Fatalf("result = %+v", r)
			}
			for i, w := range tt.want {
				if !strings.Contains(r.Findings[i], w) || !strings.Contains(log.String(), w) {
					t.Errorf("finding %d = %q, want it (and the log) to contain %q", i, r.Findings[i], w)
				}
			}
		})
	}
}

func TestParseRPMVerifyBusyboxRPM(t *testing.T) {
	out := "@@cccp rpm\nrpm: invalid option -- 'V'\nBusyBox v1.35.0 multi-call binary.\n@@cccp exit-rpm 1\n"
	if r := parseRPMVerify(out); !r.Passed || len(r.Findings) != 1 || !strings.Contains(r.Summary, "could not check") {
		t.Errorf("result = %+v", r)
	}
}
